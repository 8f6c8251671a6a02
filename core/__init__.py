"""The ground floor: settings, vocabulary, store, embeddings. Imports nothing of ingest/, retriever/, services/,
api/ or the CLI."""

__version__ = "0.1.0"
