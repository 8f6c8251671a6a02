"""deploy/ cannot rot: compose.yaml, env.example and the Caddyfile are checked against the code. (Compose itself
cannot run here: its images would come from the internet. tests/cluster runs the same topology as processes.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SETTING = re.compile(r"\bSTADTRETTER_[A-Z0-9_]+\b")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def environment_names(service: dict) -> set[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the "NAME=value" form
        return {entry.split("=", 1)[0] for entry in environment}
    return set(environment)


def unknown_settings(names: set[str]) -> set[str]:
    fields = set(Settings.model_fields)
    return {name for name in names if name.startswith("STADTRETTER_")
            and name.removeprefix("STADTRETTER_").lower() not in fields}


def test_every_stadtretter_name_in_deploy_is_a_setting() -> None:
    services = compose()["services"]
    named = set().union(*(environment_names(service) for service in services.values()))
    assert {"STADTRETTER_DATABASE_URL", "STADTRETTER_CHROMA_URL", "STADTRETTER_REDIS_URL",
            "STADTRETTER_SESSION_SECRET"} <= named
    assert unknown_settings(named) == set()
    # also every ${STADTRETTER_…} substitution and every name in the example .env (commented ones included)
    mentioned = set(SETTING.findall((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))
    mentioned |= set(SETTING.findall((DEPLOY / "env.example").read_text(encoding="utf-8")))
    assert unknown_settings(mentioned) == set()


def test_topology_of_the_issue_with_health_checks() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "chroma", "embeddings", "migrate", "api", "worker", "proxy"} <= set(services)
    assert services["api"]["deploy"]["replicas"] >= 2 and services["worker"]["deploy"]["replicas"] >= 1
    for name, service in services.items():
        if name not in ("migrate", "worker"):  # a one-shot job; a worker has no port (the queue sees it die)
            assert "healthcheck" in service, name
    assert any("/readyz" in part for part in services["api"]["healthcheck"]["test"])
    # the API waits for the migration: a replica refuses an outdated PostgreSQL schema at start
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["stadtretter", "db", "upgrade"]


def test_the_proxy_balances_over_the_api_service_on_its_port() -> None:
    services = compose()["services"]
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert re.search(rf"name api\s+port {port}\b", caddyfile)
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]
