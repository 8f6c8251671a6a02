"""Index version log and lexical snapshots (issue 18): every writer records a version after its commit to Chroma;
replicas follow it and fetch the snapshot of the lexical index in parts from here (no shared filesystem needed).

Revision ID: 0006_index_versions
Revises: 0003_question_log
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_index_versions"
down_revision = "0003_question_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("collection_id", sa.String(64)),
        sa.Column("snapshot_bytes", sa.BigInteger),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "index_snapshot_parts",
        sa.Column("version", sa.Integer, sa.ForeignKey("index_versions.version", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("index_snapshot_parts")
    op.drop_table("index_versions")
