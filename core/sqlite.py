"""One way to open the project's SQLite files (registry, conversations, feedback): a short-lived connection per
operation, rows by name, a transaction that commits on success and rolls back on error."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def connect(path: Path, timeout: float = 30) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=timeout)
    db.row_factory = sqlite3.Row
    try:
        with db:
            yield db
    finally:
        db.close()
