"""POST /v1/dossiers (JSON and downloads) and `stadtretter dossier`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from docx import Document
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from api.app import create_app
from stadtretter import cli
from tests.auth_support import key_headers


@pytest.fixture(scope="module")
def client(trainer):  # noqa: ANN001, ANN201
    with TestClient(create_app(trainer.settings, trainer.services)) as test_client:
        test_client.headers.update(key_headers(test_client, "trainer"))
        yield test_client


def test_json_dossier_with_absolute_links(client: TestClient) -> None:
    response = client.post("/v1/dossiers", json={"topic": "Frequenzmessung", "phases": ["E", "K"], "size": 3})
    assert response.status_code == 200
    data = response.json()
    assert [section["phase"] for section in data["phases"]] == ["E", "K"]
    excerpt = data["phases"][0]["sources"][0]["excerpts"][0]
    assert excerpt["link"].startswith("http://testserver/quellen/") and excerpt["locator"].startswith("Seite")
    assert data["mode"] == "extractive" and data["archive_date"]


@pytest.mark.parametrize("fmt", ["md", "docx", "pdf"])
def test_exports_are_downloads(client: TestClient, fmt: str) -> None:
    response = client.post(f"/v1/dossiers?format={fmt}", json={"topic": "Passantenbefragung", "phases": ["E"]})
    assert response.status_code == 200
    assert f'filename="materialmappe-passantenbefragung.{fmt}"' in response.headers["content-disposition"]
    content = response.content
    text = {
        "md": lambda: content.decode("utf-8"),
        "docx": lambda: "\n".join(p.text for p in Document(io.BytesIO(content)).paragraphs),
        "pdf": lambda: " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages),
    }[fmt]()
    assert "Passantenbefragung in Brückenheim" in text and "Quellenverzeichnis" in text


@pytest.mark.parametrize("body, field", [
    ({"topic": " "}, "topic"),
    ({"topic": "WLAN", "phases": ["X"]}, "phases"),
    ({"topic": "WLAN", "size": 0}, "size"),
    ({"topic": "WLAN", "date_from": "2024-13"}, "date_from"),
])  # fmt: skip
def test_bad_input_names_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/dossiers", json=body)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


def test_cli_writes_docx(trainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("stadtretter.dossier_cli.Services", lambda settings: trainer.services)
    target = tmp_path / "mappe.docx"
    result = CliRunner().invoke(cli.app, ["dossier", "Passantenbefragung", "--phase", "E,K", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = "\n".join(p.text for p in Document(str(target)).paragraphs)
    assert "Phase Evaluation (E)" in text and "Phase Konzeption (K)" in text and "Phase Transformation" not in text


@pytest.mark.parametrize("args, message", [
    (["dossier", "WLAN", "--phase", "E,X"], "--phase kennt X nicht"),
    (["dossier", "WLAN", "-o", "mappe.odt"], "Format .odt unbekannt"),
])  # fmt: skip
def test_cli_errors_are_german_without_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
