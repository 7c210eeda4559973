"""The ledger as release 1.0.0 created it (its numbered schema version 1).

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("cxnlp_schema", sa.Column("id", sa.Integer, primary_key=True), sa.Column("version", sa.Integer))
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.String(200), nullable=False, unique=True),
        sa.Column("channel", sa.String(100)),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("category_scores", sa.JSON, nullable=False),
        sa.Column("sentiment", sa.String(20), nullable=False),
        sa.Column("sentiment_scores", sa.JSON, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("department", sa.String(100)),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("root_cause", sa.Text),
        sa.Column("corrected_categories", sa.JSON),
        sa.Column("corrected_sentiment", sa.String(20)),
        sa.Column("corrected_by", sa.String(100)),
        sa.Column("corrected_at", sa.DateTime),
    )
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])
    op.create_index("ix_feedback_status_due", "feedback", ["status", "due_at"])
    op.create_table(
        "feedback_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feedback_id", sa.Integer, sa.ForeignKey("feedback.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("field", sa.String(50), nullable=False),
        sa.Column("old", sa.JSON),
        sa.Column("new", sa.JSON),
    )
