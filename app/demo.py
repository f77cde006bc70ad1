"""Demo workspace: a small bakery supplier mid-month, for trying the app out."""

import random
import secrets
from datetime import timedelta

import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import (
    Conflict,
    ConflictKind,
    Contact,
    Lead,
    Membership,
    Phase,
    Promise,
    Role,
    Source,
    SourceKind,
    Stage,
    StageVisit,
    Tenant,
    Touch,
    TouchChannel,
)
from app.workspace import services as workspace

DEMO_SLUG = "demo"
DEMO_PASSWORD = "conveyor-demo-2026"
# The owner first (the workspace is created with them); then a seat for each other role.
DEMO_TEAM = [
    ("owner@demo.example.com", "Olivia Owner", "owner"),
    ("leads@demo.example.com", "Liam Leadgen", "lead_generator"),
    ("closer@demo.example.com", "Chloe Closer", "closer"),
    ("accounts@demo.example.com", "Aaron Accounts", "account_manager"),
]
SOURCES = [
    ("Website form", SourceKind.SITE_FORM, 0),
    ("Google Ads", SourceKind.AD, 1800),
    ("Partner: CaterLink", SourceKind.PARTNER, 5000),
    ("Referrals", SourceKind.REFERRAL, 0),
]
FIRST = [
    "Anna",
    "Boris",
    "Carmen",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Irina",
    "Jonas",
    "Kira",
    "Leo",
    "Maya",
    "Nikolai",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sergei",
    "Tara",
]
LAST = [
    "Ivanova",
    "Smith",
    "Garcia",
    "Petrov",
    "Chen",
    "Novak",
    "Brown",
    "Kuznetsova",
    "Martin",
    "Sokolov",
]
COMPANIES = [
    "Corner Café",
    "Sunrise Hotel",
    "Blue Door Bistro",
    "City School Canteen",
    "Green Leaf Catering",
    "Harbor Restaurant",
    "Morning Bagels",
    "Old Town Deli",
]
DEAL_KINDS = ["weekly supply", "trial order", "event catering"]
PROBLEMS = [
    "Needs weekly flour delivery",
    "Wants gluten-free range",
    "Supplier keeps being late",
    "Opening a second site",
    "Looking for better prices on butter",
]


def seed() -> dict:
    """Create the demo workspace once; later calls report the existing one."""
    tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == DEMO_SLUG))
    if tenant is not None:
        return {"id": tenant.id, "slug": tenant.slug, "created": False, **_login()}

    rng = random.Random(2026)
    users = {}
    for email, name, role in DEMO_TEAM:
        user = workspace.find_user_by_email(email) or workspace.create_user(
            email, name, DEMO_PASSWORD
        )
        users[role] = user
    tenant = workspace.create_workspace(
        "Northwind Bakery Supplies", users["owner"], country="GB", timezone="Europe/London"
    )
    tenant.slug = DEMO_SLUG
    for role, user in list(users.items())[1:]:
        db.session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role(role)))
        user.last_tenant_id = tenant.id

    sources = []
    for name, kind, cost in SOURCES:
        source = Source(
            tenant_id=tenant.id,
            name=name,
            kind=kind,
            cost_per_lead_minor=cost,
            intake_token=secrets.token_urlsafe(24),
        )
        db.session.add(source)
        sources.append(source)
    db.session.flush()

    stages = list(
        db.session.scalars(
            sa.select(Stage).where(Stage.tenant_id == tenant.id).order_by(Stage.position)
        )
    )
    now = clock.now()
    today = now.date()
    by_name = {stage.name: stage for stage in stages}
    path = [stage for stage in stages if not stage.is_lost]
    # Each source has its own quality, so the radar has something to say.
    quality = {
        "Website form": 0.1,
        "Google Ads": 0.2,
        "Partner: CaterLink": 0.45,
        "Referrals": 0.02,
    }
    for index in range(120):
        source = rng.choice(sources)
        created = now - timedelta(days=rng.uniform(0.5, 60))
        lost_reason = None
        if rng.random() < quality.get(source.name, 0.02):
            lost_reason = rng.choice(["junk", "junk", "unreachable"])
            reached = rng.randint(0, 1)
        else:
            reached = min(int(rng.expovariate(0.45)), len(path) - 1)
            if reached >= 3 and rng.random() < 0.2:
                lost_reason = rng.choice(["no_money", "bad_timing", "competitor"])
        history = path[: reached + 1]
        stage = by_name["Lost"] if lost_reason else history[-1]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(COMPANIES)
        contact = Contact(
            tenant_id=tenant.id,
            name=f"{first} {last}",
            company=company,
            email=f"{first.lower()}.{last.lower()}{index}@example.com",
            phone=f"+4420795{index:05d}",
        )
        db.session.add(contact)
        db.session.flush()
        holder = {
            Phase.GENERATION: users["lead_generator"],
            Phase.CONVERSION: users["closer"],
            Phase.ACCOUNT: users["account_manager"],
        }
        qualified = any(
            step.phase != Phase.GENERATION or step.name == "Qualified" for step in history
        )
        # Stays along the pipeline, a few hours to a few days each, ending by now.
        moments = [created]
        for _ in history[1:] + ([stage] if lost_reason else []):
            moments.append(min(moments[-1] + timedelta(hours=rng.uniform(4, 96)), now))
        won = any(step.is_won for step in history) or stage.phase == Phase.ACCOUNT
        lead = Lead(
            tenant_id=tenant.id,
            contact_id=contact.id,
            source_id=source.id,
            stage_id=stage.id,
            owner_id=holder[history[-1].phase].id,
            title=f"{company}: {rng.choice(DEAL_KINDS)}",
            value_minor=rng.randrange(20, 400) * 1000,
            problem=rng.choice(PROBLEMS) if qualified else None,
            money=rng.choice(["confirmed", "£500/month", "£2,000"]) if qualified else None,
            decision_date=today + timedelta(days=rng.randint(-5, 20)) if qualified else None,
            qualified_at=moments[min(3, len(moments) - 1)] if qualified else None,
            won_at=moments[-1] if won else None,
            closed_at=moments[-1] if lost_reason or won else None,
            lost_reason=lost_reason,
            first_touch_at=created + timedelta(hours=rng.lognormvariate(1.0, 1.0))
            if lost_reason != "unreachable"
            else None,
            next_touch_on=(
                today + timedelta(days=rng.randint(-3, 7)) if stage.phase == Phase.ACCOUNT else None
            ),
            last_activity_at=moments[-1],
            stage_entered_at=moments[-1],
            created_at=created,
        )
        db.session.add(lead)
        db.session.flush()
        steps = history + ([stage] if lost_reason else [])
        for here, there, entered, left in zip(steps, steps[1:], moments, moments[1:], strict=False):
            db.session.add(
                StageVisit(
                    tenant_id=tenant.id,
                    lead_id=lead.id,
                    stage_id=here.id,
                    next_stage_id=there.id,
                    owner_id=holder[here.phase].id,
                    forward=not there.is_lost,
                    lead_created_at=created,
                    entered_at=entered,
                    left_at=left,
                    seconds=int((left - entered).total_seconds()),
                )
            )
    db.session.flush()
    _add_history(tenant, users, rng, now)
    db.session.commit()
    return {"id": tenant.id, "slug": tenant.slug, "created": True, **_login()}


def _add_history(tenant, users, rng, now) -> None:
    """Touches on clients, a promise waiting for the account manager, two conflicts."""
    clients = db.session.scalars(
        sa.select(Lead)
        .join(Stage, Stage.id == Lead.stage_id)
        .where(Lead.tenant_id == tenant.id, Stage.phase == Phase.ACCOUNT)
    ).all()
    for client in clients:
        touched = now - timedelta(days=rng.randint(1, 12))
        client.last_touch_at = client.first_touch_at = touched
        db.session.add(
            Touch(
                tenant_id=tenant.id,
                lead_id=client.id,
                actor_id=users["account_manager"].id,
                channel=TouchChannel.CALL,
                outcome="Happy with the last delivery",
                happened_at=touched,
            )
        )
    if clients:
        db.session.add(
            Promise(
                tenant_id=tenant.id,
                lead_id=clients[0].id,
                made_by_id=users["closer"].id,
                text="Free delivery for the first month",
                discount_percent=15,
            )
        )
        db.session.add(
            Conflict(
                tenant_id=tenant.id,
                kind=ConflictKind.PROMISE_BEYOND_AUTHORITY,
                lead_id=clients[0].id,
                user_id=users["closer"].id,
                details={
                    "discount_percent": 15,
                    "limit": 10,
                    "text": "Free delivery for the first month",
                },
            )
        )
    db.session.add(
        Conflict(
            tenant_id=tenant.id,
            kind=ConflictKind.CADENCE_MISSED,
            user_id=users["account_manager"].id,
            details={"due": (now.date() - timedelta(days=4)).isoformat()},
        )
    )


def _login() -> dict:
    return {
        "login": {email: DEMO_PASSWORD for email, _, _ in DEMO_TEAM},
        "note": "every demo member uses the same password",
    }
