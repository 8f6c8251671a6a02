"""The wheel works on its own: built from the sources, installed into a fresh venv and run from another directory
it finds its templates, phase files, calibration and web assets (package data), ingests a folder and serves.

Nothing is downloaded: the wheel is installed without dependencies, and the fresh venv sees the dependencies of the
development venv through a .pth file (a plain path entry: the editable install's own .pth hook is not run there,
so our packages can only come from the wheel).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.database import Database
from tests.conftest import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "ingest", "retriever", "services", "api", "stadtretter", "prompts")

pytestmark = pytest.mark.model  # ingests with the real embedding model


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel in it; returns its bin/ directory."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"  # a copy, so the build leaves no build/ or *.egg-info behind in the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", root / "dist",
        source, cwd=root)
    wheel = next((root / "dist").glob("stadtretter-*.whl"))

    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel,
        cwd=root)
    target = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).strip())
    (target / "dev-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    return venv / "bin"


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STADTRETTER_") and k != "PYTHONPATH"}
    env.update({"STADTRETTER_DATA_DIR": str(data_dir), "STADTRETTER_CORPUS_DIR": str(data_dir / "corpus")})
    return env


def test_the_code_comes_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    out = run(installed / "python", "-c",
              "import core, prompts, api, stadtretter; print(core.__file__, prompts.__file__, api.__file__)",
              cwd=tmp_path)  # fmt: skip
    venv = installed.parent.resolve()
    for path in out.split():
        assert Path(path).resolve().is_relative_to(venv), out
    assert str(REPO) not in out


def test_help_ingest_and_serve_from_another_directory(installed: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    work = tmp_path / "anderswo"
    folder = work / "quellen"
    folder.mkdir(parents=True)
    (folder / "wlan.md").write_text(
        "---\ntitle: Kommunales WLAN\ntype: article\ndate: 2024-05-02\n---\n\n# Finanzierung\n\n"
        "Das kommunale WLAN in der Innenstadt wird aus dem Verfügungsfonds und von den Händlern finanziert. "
        "Die Stadt trägt die Betriebskosten für drei Jahre.\n",
        encoding="utf-8",
    )
    env = clean_env(work / "data")
    stadtretter = installed / "stadtretter"

    assert "Quellen einlesen" in run(stadtretter, "--help", cwd=work, env=env)
    # Alembic migrations are package data (core/migrations); the registry and accounts work from the wheel.
    assert f"leer → {Database('sqlite://').head_revision()}" in run(stadtretter, "db", "upgrade", cwd=work, env=env)
    report = run(stadtretter, "ingest", folder, "--json", cwd=work, env=env, timeout=180)
    assert '"added": 1' in report and '"failed": []' in report
    key = run(stadtretter, "keys", "create", "--name", "wheel", "--scope", "trainer", cwd=work, env=env).strip()

    port = free_port()
    server = subprocess.Popen(
        [str(stadtretter), "serve", "--port", str(port)], cwd=work, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_port(port, timeout=90, process=server)  # uvicorn listens once the app has started
        health = httpx.get(f"{base}/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["chunks"] >= 1 and health.json()["sources"] == 1
        with httpx.Client(base_url=base, timeout=60) as client:
            assert "Wissens-Chat" in client.get("/").text  # template from api/templates
            assert client.get("/static/app.js").status_code == 200  # asset from api/static
            phases = client.get("/v1/phases").json()["phases"]  # prompts/phases/*.md
            assert [p["label"] for p in phases] == ["Evaluation", "Konzeption", "Transformation", "Phasenübergreifend"]
            answer = client.post("/v1/ask", json={"question": "Wer finanziert das kommunale WLAN?"}).json()
            assert answer["citations"] and answer["citations"][0]["title"] == "Kommunales WLAN"
            assert client.get("/v1/feedback").status_code == 401
            assert client.get("/v1/feedback", headers={"Authorization": f"Bearer {key}"}).status_code == 200
            assert "Anmelden" in client.get("/anmelden").text
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
    assert time.perf_counter() - started < 120

