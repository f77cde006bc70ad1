"""The source-quality alert email: sent once per alert to every active owner."""

from app.auth.services import preferred_locale
from app.extensions import db
from app.mail import external_url, send_email
from app.models import Conflict, Source, Topic
from app.policy import members_who
from app.telegram.preferences import wants_email
from app.tenancy import tenant_scope


def send_quality_alert(tenant_id: int, conflict_id: int) -> int:
    with tenant_scope(tenant_id) as tenant:
        conflict = db.session.get(Conflict, conflict_id)
        if conflict is None or conflict.tenant_id != tenant_id or conflict.details.get("emailed"):
            return 0
        source = db.session.get(Source, conflict.source_id)
        link = external_url("radar.conflict", conflict_id=conflict.id)
        # An owner who chose Telegram only for alerts gets it there (app.telegram.alerts).
        owners = [
            owner
            for owner in members_who(tenant_id, "alerts.receive")
            if wants_email(tenant_id, owner.user_id, Topic.ALERTS)
        ]
        for owner in owners:
            send_email(
                owner.user.email,
                "source_alert",
                preferred_locale(owner.user),
                tenant=tenant,
                source=source,
                details=conflict.details,
                link=link,
                user=owner.user,
            )
        conflict.details = {**conflict.details, "emailed": True}
        db.session.commit()
        return len(owners)
