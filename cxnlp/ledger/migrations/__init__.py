"""Alembic migrations of the ledger schema, run by ``cxnlp.ledger.db.upgrade`` whenever a ledger is opened."""
