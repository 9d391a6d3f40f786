"""Alembic environment for the ledger's own schema.

chatledger runs migrations programmatically (``ledger.migrations``) and hands over an open
connection; the ``sqlalchemy.url`` fallback serves the plain ``alembic`` command
(``alembic -c alembic/alembic.ini -x url=sqlite:///chatledger.db upgrade head``).
"""

from sqlalchemy import create_engine

from alembic import context
from ledger.schema import metadata

config = context.config


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as fresh:
        run_migrations(fresh)
