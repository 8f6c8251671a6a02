"""Ingestion: loaders per source type → structure-aware chunks with metadata → store."""
