"""typed timeline events: a cadence change and a planned touch are events with data,
not notes written as "↻ 7" and "⏰ 2026-12-01 15:30"

Revision ID: 0019_typed_timeline_events
Revises: 0018_workspace_country
Create Date: 2026-12-06 07:30:00

Notes written that way by the app are recognised exactly; anything else a person wrote
stays a note. A planned moment was written on the workspace's wall clock: it is stored
in UTC now, read in the workspace's timezone.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0019_typed_timeline_events"
down_revision = "0018_workspace_country"
branch_labels = None
depends_on = None

CADENCE = r"^↻ [0-9]{1,4}$"
PLANNED = r"^⏰ [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$"
CLEARED = "⏰ —"


def upgrade():
    op.execute(
        f"""
        UPDATE lead_event
        SET kind = 'cadence_changed',
            data = json_build_object('days', substr(data->>'text', 3)::int)
        WHERE kind = 'note' AND data->>'text' ~ '{CADENCE}'
        """
    )
    op.execute(
        f"""
        UPDATE lead_event AS event
        SET kind = 'touch_planned',
            data = json_build_object(
                'at',
                to_char(
                    (substr(event.data->>'text', 3)::timestamp AT TIME ZONE tenant.timezone)
                        AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
                )
            )
        FROM tenant
        WHERE tenant.id = event.tenant_id
          AND event.kind = 'note' AND event.data->>'text' ~ '{PLANNED}'
        """
    )
    op.execute(
        f"""
        UPDATE lead_event
        SET kind = 'touch_planned', data = json_build_object('at', NULL)
        WHERE kind = 'note' AND data->>'text' = '{CLEARED}'
        """
    )


def downgrade():
    op.execute(
        """
        UPDATE lead_event
        SET kind = 'note', data = json_build_object('text', '↻ ' || (data->>'days'))
        WHERE kind = 'cadence_changed'
        """
    )
    op.execute(
        """
        UPDATE lead_event AS event
        SET kind = 'note',
            data = json_build_object(
                'text',
                CASE WHEN event.data->>'at' IS NULL THEN '⏰ —'
                ELSE '⏰ ' || to_char(
                    (event.data->>'at')::timestamptz AT TIME ZONE tenant.timezone,
                    'YYYY-MM-DD HH24:MI'
                ) END
            )
        FROM tenant
        WHERE tenant.id = event.tenant_id AND event.kind = 'touch_planned'
        """
    )
