"""The service cycle: urgency, kind, problems, customer id, both clocks, status timestamps and follow-ups.

``due_at`` becomes ``resolve_by`` (nullable: praise and questions have no resolution deadline). No
table is rebuilt (a rebuild on SQLite would cascade-delete the audit trail): the column is added,
copied and the old one dropped. Existing records keep their deadline; their kind is read from their
(corrected) sentiment and categories, their urgency is 一般, and the times a status was reached are
read back from the audit trail.

Revision ID: 0003
Revises: 0002
"""
import json
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RESPOND_HOURS_GENERAL = 4  # the 一般 tier of the shipped rules


def upgrade() -> None:
    op.execute("DROP INDEX ix_feedback_status_due")
    for name, type_, default in (("urgency", sa.String(10), "'一般'"), ("kind", sa.String(20), "'complaint'"),
                                 ("problems", sa.JSON, "'[]'")):
        op.add_column("feedback", sa.Column(name, type_, nullable=False, server_default=sa.text(default)))
    op.add_column("feedback", sa.Column("customer", sa.String(100), nullable=True))
    for name in ("respond_by", "resolve_by", "first_response_at", "resolved_at", "customer_notified_at", "closed_at"):
        op.add_column("feedback", sa.Column(name, sa.DateTime, nullable=True))
    op.execute("UPDATE feedback SET resolve_by = due_at")
    op.execute("ALTER TABLE feedback DROP COLUMN due_at")
    op.create_index("ix_feedback_status_due", "feedback", ["status", "resolve_by"])
    op.create_index("ix_feedback_kind_received", "feedback", ["kind", "received_at"])
    op.create_table(
        "followup",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feedback_id", sa.Integer, sa.ForeignKey("feedback.id", ondelete="CASCADE"), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("scheduled_at", sa.DateTime, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("done_at", sa.DateTime),
        sa.Column("score", sa.Integer),
        sa.Column("note", sa.Text),
        sa.Column("actor", sa.String(100)),
    )
    op.create_index("ix_followup_feedback_id", "followup", ["feedback_id"])
    op.create_index("ix_followup_due_at", "followup", ["due_at"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    dt, js, st = sa.DateTime, sa.JSON, sa.String
    feedback = sa.table("feedback", sa.column("id", sa.Integer), sa.column("received_at", dt),
                        sa.column("sentiment", st), sa.column("corrected_sentiment", st),
                        sa.column("categories", js), sa.column("corrected_categories", js), sa.column("status", st),
                        sa.column("kind", st), sa.column("respond_by", dt), sa.column("resolve_by", dt),
                        sa.column("resolved_at", dt), sa.column("closed_at", dt))
    audit = sa.table("feedback_audit", sa.column("feedback_id", sa.Integer), sa.column("field", st),
                     sa.column("new", js), sa.column("at", dt))
    reached: dict[tuple[int, str], object] = {}
    for fid, status, at in conn.execute(sa.select(audit.c.feedback_id, audit.c.new, audit.c.at)
                                        .where(audit.c.field == "status").order_by(audit.c.at, audit.c.feedback_id)):
        reached[(fid, status)] = at  # the last time each status was reached
    rows = conn.execute(sa.select(feedback.c.id, feedback.c.received_at, feedback.c.sentiment,
                                  feedback.c.corrected_sentiment, feedback.c.categories,
                                  feedback.c.corrected_categories, feedback.c.status)).all()
    for fid, received, sentiment, corrected_sentiment, cats, corrected_cats, status in rows:
        sentiment = corrected_sentiment or sentiment
        cats = corrected_cats if corrected_cats is not None else cats
        kind = "complaint" if sentiment == "negative" or (cats and sentiment != "positive") else ("praise" if sentiment == "positive" else "inquiry")
        values = {"kind": kind, "respond_by": received + timedelta(hours=RESPOND_HOURS_GENERAL)}
        if kind != "complaint":
            values["resolve_by"] = None
        if status in ("resolved", "closed"):
            values["resolved_at"] = reached.get((fid, "resolved")) or reached.get((fid, "closed"))
        if status == "closed":
            values["closed_at"] = reached.get((fid, "closed"))
        conn.execute(sa.update(feedback).where(feedback.c.id == fid).values(**values))
