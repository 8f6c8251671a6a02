"""Alembic environment. Called by core.database.Database, which passes its engine in `config.attributes`; the
migrations are written by hand (no autogenerate), so there is no target metadata here."""

from alembic import context

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
