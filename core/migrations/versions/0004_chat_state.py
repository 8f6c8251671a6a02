"""Chat state in the state database: the source registry (per Chroma collection), conversations and feedback,
until now in their own SQLite files under the data directory (copied over once at start: services/legacy_state.py).

Revision ID: 0004_chat_state
Revises: 0003_question_log
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_chat_state"
down_revision = "0003_question_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("collection", sa.String(200), primary_key=True),
        sa.Column("source_id", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("file_hash", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("type", sa.String(32)),
        sa.Column("url", sa.Text),
        sa.Column("date", sa.String(32)),
        sa.Column("author", sa.Text),
        sa.Column("chunk_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("phase", sa.String(16)),
        sa.Column("phase_scores", sa.Text),
        sa.Column("warnings", sa.Text),
        sa.Column("updated_at", sa.Float),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_table(
        "conversation_turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("query", sa.Text),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_conversation_turns_conversation", "conversation_turns", ["conversation_id", "id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("citations", sa.Text, nullable=False, server_default="[]"),
        sa.Column("rating", sa.String(4), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("conversation_id", sa.String(64)),
        sa.CheckConstraint("rating IN ('up', 'down')", name="ck_feedback_rating"),
    )
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_created_at", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_conversation_turns_conversation", table_name="conversation_turns")
    op.drop_table("conversation_turns")
    op.drop_index("ix_conversations_updated_at", table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("sources")
