"""Alembic's entry point for this package's migrations. They run programmatically only
(`commands.storage.sql.migrate`), inside the caller's transaction on the caller's connection, which arrives
in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context

from commands.storage.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
