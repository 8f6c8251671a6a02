"""Loads the German templates of the `prompts` package as langchain prompt templates."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from langchain_core.prompts import PromptTemplate

PROMPTS = files("prompts")


@lru_cache(maxsize=64)
def template(name: str) -> PromptTemplate:
    return PromptTemplate.from_template((PROMPTS / name).read_text(encoding="utf-8").strip())


def render(name: str, **values: str) -> str:
    return template(name).format(**values)
