"""Question log (Fragenprotokoll): public questions with time, phase, abstention, filters, rating and comment.
No IP, cookie, key or conversation id. Rows older than STADTRETTER_QUESTION_LOG_DAYS are deleted by the app.

Revision ID: 0003_question_log
Revises: 0002_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_question_log"
down_revision = "0002_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "question_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("phase", sa.String(16)),
        sa.Column("abstained", sa.Boolean, nullable=False),
        sa.Column("filters", sa.Text, nullable=False, server_default="{}"),
        sa.Column("rating", sa.String(4)),
        sa.Column("comment", sa.Text),
        sa.Column("embedding_model", sa.String(200)),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("retrieved", sa.Text),
    )
    op.create_index("ix_question_log_asked_at", "question_log", ["asked_at"])


def downgrade() -> None:
    op.drop_index("ix_question_log_asked_at", table_name="question_log")
    op.drop_table("question_log")
