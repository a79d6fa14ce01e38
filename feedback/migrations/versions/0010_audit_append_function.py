"""audit events appended by one database function call on PostgreSQL

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:50:00

Every write holds the audit chain's head row locked until it commits. Reading the head,
hashing in Python and writing the events took two round trips and the Python work in between,
all under that lock. This function does the same in one call: the caller sends each event's
canonical text up to its sequence number (`audit.hash_prefix`), and the hash is computed here
exactly as `audit.event_hash` computes it, so `countersign audit verify` checks both alike.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APPEND = r"""
CREATE OR REPLACE FUNCTION countersign_audit_append(
    p_occurred_at timestamptz, p_actor_id integer, p_actor text, p_actions text[], p_entity_types text[],
    p_entity_ids text[], p_details text[], p_prefixes text[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_actions);
    first_seq integer;
    prev text;
    next_hash text;
BEGIN
    UPDATE audit_head SET seq = seq + n WHERE id = 1 RETURNING seq - n, last_hash INTO first_seq, prev;
    FOR i IN 1..n LOOP
        next_hash := encode(sha256(convert_to(prev || E'\n' || p_prefixes[i] || (first_seq + i)::text || '}', 'UTF8')), 'hex');
        INSERT INTO audit_events (seq, occurred_at, actor_id, actor, action, entity_type, entity_id, details, prev_hash, hash)
        VALUES (first_seq + i, p_occurred_at, p_actor_id, p_actor, p_actions[i], p_entity_types[i], p_entity_ids[i],
                p_details[i], prev, next_hash);
        prev := next_hash;
    END LOOP;
    UPDATE audit_head SET last_hash = prev WHERE id = 1;
END
$$
"""


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION countersign_audit_append(timestamptz, integer, text, text[], text[], text[], text[], text[])"
        )
