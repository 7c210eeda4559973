"""Alembic environment: always called by ``cxnlp.ledger.db.upgrade`` with an open connection."""
from __future__ import annotations

from alembic import context

from cxnlp.ledger.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
