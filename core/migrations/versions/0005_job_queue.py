"""Shared job queue: uploaded files are staged in the state database until their job ends, so a worker on another
machine than the API process that took the upload can read them; each job records the token of the queue message
that may run it (services/jobs.py, services/job_queue.py).

Revision ID: 0005_job_queue
Revises: 0003_question_log
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_job_queue"
down_revision = "0003_question_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("dispatch_token", sa.String(32)))
    op.create_table(
        "job_files",
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_files")
    op.drop_column("jobs", "dispatch_token")
