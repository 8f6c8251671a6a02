"""The application layer: composes core, ingest and retriever into the services the API and the CLI use, plus the
evaluation and the benchmark data sets."""
