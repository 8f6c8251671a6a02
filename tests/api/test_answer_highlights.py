"""The web chat marks the answer's highlights (api/static/format.js, run in Node): escaped text, <mark> around the
server's character spans, markers untouched, spans that do not fit the text ignored."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FORMAT_JS = Path(__file__).resolve().parents[2] / "api" / "static" / "format.js"
NODE = shutil.which("node")


def _render(text: str, highlights: list) -> str:  # noqa: ANN001
    script = (
        f"import {{ renderAnswerHTML }} from {json.dumps(FORMAT_JS.as_uri())};\n"
        f"process.stdout.write(renderAnswerHTML({json.dumps(text)}, (n) => `<a>${{n}}</a>`, "
        f"{json.dumps(highlights)}));\n"
    )
    result = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(NODE is None, reason="Node.js fehlt auf diesem Rechner")
def test_highlights_become_marks_inside_escaped_text() -> None:
    text = "Befragt wurden 1.214 Passanten <b>vor Ort</b>. [1]"
    html = _render(text, [[15, 20]])
    assert html == ('<p>Befragt wurden <mark class="sr-highlight">1.214</mark> Passanten &lt;b&gt;vor Ort&lt;/b&gt;. '
                    "<a>1</a></p>")
    assert _render(text, [[40, 400], [5, 2], "x"]) == _render(text, [])  # out of range or malformed: ignored
