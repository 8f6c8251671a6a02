"""Join the three issue-18 migrations that were written side by side on 0003 (chat state, job queue, index
versions) into one head; no schema change of its own.

Revision ID: 0007_merge_issue18
Revises: 0004_chat_state, 0005_job_queue, 0006_index_versions
"""

revision = "0007_merge_issue18"
down_revision = ("0004_chat_state", "0005_job_queue", "0006_index_versions")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
