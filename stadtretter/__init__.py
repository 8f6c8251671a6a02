"""Stadtretter Wissens-Chat: shared core (settings, embeddings, store, CLI)."""

__version__ = "0.1.0"
