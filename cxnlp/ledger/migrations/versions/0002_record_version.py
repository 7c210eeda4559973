"""The record version used for compare-and-set updates (numbered schema version 2).

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE feedback ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
