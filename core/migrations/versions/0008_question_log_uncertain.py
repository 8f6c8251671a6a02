"""Question log: whether an answer was given only with reservation (`uncertain`, issue 14: the answerability model
was unsure the cited sentences say what was asked). Rows logged before this revision count as not uncertain.

Revision ID: 0008_question_log_uncertain
Revises: 0007_merge_issue18
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_question_log_uncertain"
down_revision = "0007_merge_issue18"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("question_log") as batch:
        batch.add_column(sa.Column("uncertain", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("question_log") as batch:
        batch.drop_column("uncertain")
