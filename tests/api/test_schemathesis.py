"""Schemathesis against /openapi.json of a real server process (tests/faults/child.py serve, test embedding): every
operation, generated valid and invalid input; no 5xx, responses match the schema, no response leaks a traceback.
Bounded: MAX_EXAMPLES per operation, no deadline (two shared cores)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.conftest import free_port
from tests.faults.conftest import ROOT, child_command, child_env, make_corpus, run_child

MAX_EXAMPLES = 30
METRICS_TOKEN = "schemathesis-metrik-token"
ADMIN_KEY: dict = {}  # created by the fixture: the key (scope admin) for operations that need a role
LEAKS = ("Traceback (most recent call last)", 'File "/', "sqlite3.", "chromadb.", "Exception:")
# What no schema can say: whether uploaded bytes are a readable PDF/VTT, or whether a URL's host resolves to a
# public address. These operations may refuse schema-valid input with a German 413/415/422 (tests/api/
# test_admin_content.py proves each refusal); every other check still applies to them.
CONTENT_CHECKED = {("POST", "/v1/admin/documents"), ("POST", "/v1/admin/imports")}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    root = tmp_path_factory.mktemp("schemathesis")
    corpus = make_corpus(root / "corpus", files=6)
    env = child_env(root / "data", corpus, rate_limit_per_minute="1000000", metrics_token=METRICS_TOKEN)
    assert run_child(env, "ingest", str(corpus)).returncode == 0
    created = run_child(env, "key", "admin")
    assert created.returncode == 0, created.stderr
    _, key_id, key = created.stdout.split()
    ADMIN_KEY.update(id=int(key_id), key=key)
    port = free_port()
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(child_command("serve", str(port)), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "Server nicht gestartet"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _no_traceback_leaks(ctx, response, case) -> None:  # noqa: ANN001 - schemathesis' check signature
    body = response.text or ""
    for leak in LEAKS:
        if leak in body:
            raise AssertionError(f"Antwort verrät Interna ({leak!r}): {body[:300]}")


def _credentials(method: str, path: str) -> dict[str, str] | None:
    """The metrics token for /metrics, the admin key where a role is needed; public operations go without."""
    if path == "/metrics":
        return {"Authorization": f"Bearer {METRICS_TOKEN}"}
    if path.startswith("/v1/admin/") or (method, path) == ("GET", "/v1/feedback"):
        return {"Authorization": f"Bearer {ADMIN_KEY['key']}"}
    return None


def test_every_operation_conforms_to_the_schema(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        headers = _credentials(operation.method.upper(), operation.path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            def check(case: schemathesis.Case) -> None:
                if (case.path_parameters or {}).get("key_id") == ADMIN_KEY["id"]:
                    return  # never revoke the key this test calls with
                excluded = [positive_data_acceptance] if (operation.method.upper(), operation.path) in CONTENT_CHECKED else []
                case.call_and_validate(headers=headers, additional_checks=[_no_traceback_leaks],
                                       excluded_checks=excluded, timeout=60)

            try:
                check()
            except Unsatisfiable:  # no parameters and no body: nothing to make invalid
                assert mode is GenerationMode.NEGATIVE and not operation.body and not list(operation.iter_parameters())
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all failures, report them all
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
