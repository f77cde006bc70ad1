"""One policy: roles are compared in app/policy.py and nowhere else, and what the
watched roles may not touch (their own alarm) stays the owner's."""

import ast
import re
from pathlib import Path

import sqlalchemy as sa

from app.extensions import db
from app.models import Role, Source

APP = Path(__file__).resolve().parent.parent / "app"
POLICY = APP / "policy.py"
ROLE_NAMES = {role.name for role in Role}
ROLE_VALUES = {role.value for role in Role}


def _mentions_a_role(node: ast.AST) -> bool:
    """``Role.X``, ``Role(...)``, a ``.role`` attribute, a name ``role``/``roles``, or a
    role's stored value as a string."""
    for part in ast.walk(node):
        if isinstance(part, ast.Attribute) and (
            part.attr == "role" or (isinstance(part.value, ast.Name) and part.value.id == "Role")
        ):
            return True
        if isinstance(part, ast.Name) and part.id in ("role", "roles", "Role"):
            return True
        if isinstance(part, ast.Constant) and part.value in ROLE_VALUES:
            return True
    return False


def _python_role_checks(path: Path) -> list[str]:
    """Comparisons of roles, and roles named other than to give someone a seat."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    allowed = set()  # nodes where naming a role is an assignment, not a check
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Role":
            allowed.update(ast.walk(node))
        if isinstance(node, ast.keyword) and node.arg == "role":
            allowed.update(ast.walk(node.value))  # Membership(..., role=Role.OWNER)
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "role" for t in targets):
                allowed.update(ast.walk(node.value))  # membership.role = invitation.role
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _mentions_a_role(node):
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Role"
            and node.attr in ROLE_NAMES
            and node not in allowed
        ):
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno}: Role.{node.attr}")
    return found


# ``role == "closer"``, ``x == m.role``, ``"owner" in roles``, ``role != ...`` in Jinja.
TEMPLATE_CHECK = re.compile(
    r"\brole\w*\b[^%}]*?(==|!=|\bin\b|\bis\b)|"
    r"(==|!=|\bin\b)\s*[\w.]*\brole\b|"
    rf"[\"']({'|'.join(ROLE_VALUES)})[\"']\s*(==|!=|\bin\b)"
)


def _template_role_checks(path: Path) -> list[str]:
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for tag in re.findall(r"{%.*?%}|{{.*?}}", line):
            if TEMPLATE_CHECK.search(tag):
                found.append(f"{path.relative_to(APP.parent)}:{number}: {tag}")
    return found


def test_no_role_is_compared_outside_the_policy():
    found = []
    for path in sorted(APP.rglob("*.py")):
        if path != POLICY:
            found += _python_role_checks(path)
    for path in sorted(APP.rglob("*.html")) + sorted(APP.rglob("*.txt")):
        if "templates" in path.parts:
            found += _template_role_checks(path)
    assert not found, "ask app/policy.py instead:\n" + "\n".join(found)


def test_the_walk_notices_a_role_check_written_anywhere(tmp_path):
    python = tmp_path / "view.py"
    python.write_text(
        "def view(g):\n"
        "    if g.membership.role == Role.OWNER:\n"
        "        return 1\n"
        "    return g.membership.role in (Role.CLOSER,)\n"
    )
    template = tmp_path / "templates" / "page.html"
    template.parent.mkdir()
    template.write_text(
        '{% if role == "closer" %}x{% endif %}{% if g.membership.role %}y{% endif %}\n'
        "<option{% if choice.value == m.role.value %} selected{% endif %}>"
    )
    real_app = APP.parent
    try:
        globals()["APP"] = tmp_path
        assert len(_python_role_checks(python)) == 4
        assert len(_template_role_checks(template)) == 2
    finally:
        globals()["APP"] = real_app / "app"


# --- Hole 7: the watched role cannot switch off its own alarm -------------------------------

LIMIT_FIELDS = ("junk_share_max", "qualified_share_min")


def _source_form(source, **extra):
    return {
        "name": source.name,
        "kind": "partner",
        "cost": "50",
        "rate_limit_per_minute": "600",
        **extra,
    }


def _limits(source):
    db.session.expire_all()
    row = db.session.get(Source, source.id)
    return row.junk_share_max, row.qualified_share_min


def test_a_lead_generator_cannot_switch_off_a_sources_alarm(client, login, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    leadgen = make.member(tenant, Role.LEAD_GENERATOR)
    source = make.source(tenant, "Banner partner")
    source.junk_share_max, source.qualified_share_min = 30, 20
    db.session.commit()
    login(leadgen.email)
    page = client.get(f"/sources/{source.id}/edit")
    assert page.status_code == 200
    assert "junk_share_max" not in page.text and "qualified_share_min" not in page.text
    assert "Quality alert limits" not in page.text
    response = client.post(
        f"/sources/{source.id}/edit",
        data=_source_form(source, junk_share_max="100", qualified_share_min="0"),
    )
    assert response.status_code == 403
    assert "Only the owner sets alert limits" in response.text
    assert _limits(source) == (30, 20)
    # Creating a source with its own limits is refused as well, and creates nothing.
    response = client.post(
        "/sources/new",
        data={**_source_form(source, junk_share_max="100"), "name": "Sneaky"},
    )
    assert response.status_code == 403
    assert not db.session.scalar(
        sa.select(Source.id).where(Source.name == "Sneaky").execution_options(all_tenants=True)
    )
    # Editing what is theirs (the name, the cost) still works and keeps the limits.
    response = client.post(f"/sources/{source.id}/edit", data=_source_form(source, cost="60"))
    assert response.status_code == 302
    assert _limits(source) == (30, 20)


def test_the_owner_sets_a_sources_alert_limits(client, login, make):
    tenant, owner = make.workspace_with_owner(name="Bakery")
    source = make.source(tenant, "Banner partner")
    login(owner.email)
    page = client.get(f"/sources/{source.id}/edit")
    assert all(name in page.text for name in LIMIT_FIELDS)
    response = client.post(
        f"/sources/{source.id}/edit",
        data=_source_form(source, junk_share_max="25", qualified_share_min="40"),
    )
    assert response.status_code == 302
    assert _limits(source) == (25, 40)
