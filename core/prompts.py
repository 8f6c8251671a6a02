"""Loads the German templates under prompts/ as langchain prompt templates."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from langchain_core.prompts import PromptTemplate

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@lru_cache(maxsize=64)
def template(name: str) -> PromptTemplate:
    path = PROMPTS_DIR / name
    return PromptTemplate.from_template(path.read_text(encoding="utf-8").strip())


def render(name: str, **values: str) -> str:
    return template(name).format(**values)
