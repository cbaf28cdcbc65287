"""create the items table

The table the app created itself before migrations existed (its old SCHEMA_SQL), unchanged:
IF NOT EXISTS adopts a database that the old app already set up, without error.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS items (
            id serial PRIMARY KEY,
            name text NOT NULL,
            created_at timestamptz DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS items")
