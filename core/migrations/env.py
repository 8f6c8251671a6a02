"""Alembic environment. Called by core.database.Database, which passes its engine in `config.attributes`; the
migrations are written by hand (no autogenerate), so there is no target metadata here.

All pending migrations run in one transaction, also on SQLite: Python's sqlite3 runs DDL outside a transaction
unless BEGIN is issued explicitly, so a process killed mid-migration (e.g. the first `stadtretter ingest` on a new
data directory) would leave tables without their Alembic version and every later start would fail."""

from alembic import context

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.connection.driver_connection.isolation_level = None  # BEGIN is ours, not the driver's
    try:
        with connection.begin():
            if sqlite:
                connection.exec_driver_sql("BEGIN")
            context.configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if sqlite:
            connection.invalidate()  # never pool a connection with the driver's transaction handling changed
