"""Conveyor speaks Russian: the catalogues are complete and current, and pages and mail follow them.

The catalogues live in ``app/translations``: ``messages.pot`` is extracted from
the code with ``babel.cfg``, each ``<lang>/LC_MESSAGES/messages.po`` is
translated from it and compiled into the ``messages.mo`` the app reads.
"""

import io
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from app.models import Role

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "app" / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALES = ["en", "ru"]

# printf-style directives: %(name)s, %(count)d, %s, %%
DIRECTIVE = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")


def _po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def _mo_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"


def _read_po(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


def _ids(catalog) -> set:
    return {message.id for message in catalog if message.id}


def _directives(text: str) -> tuple[Counter, str]:
    """The format directives in ``text`` and what is left once they are taken out."""
    found = Counter(DIRECTIVE.findall(text))
    return found, DIRECTIVE.sub("", text)


@cache
def _russian() -> dict:
    catalog = _read_po(_po_path("ru"))
    return {message.id: message.string for message in catalog if message.id}


def ru(msgid: str, **variables) -> str:
    """The Russian catalogue's wording for ``msgid`` (which must be really translated)."""
    text = _russian().get(msgid)
    assert text and text != msgid, f"no Russian translation for {msgid!r}"
    return text % variables if variables else text


# --- The catalogues ---------------------------------------------------------


def test_every_message_is_translated_into_russian_with_the_same_placeholders():
    template = _read_po(POT)
    catalog = _read_po(_po_path("ru"))
    assert catalog.locale is not None and str(catalog.locale) == "ru"
    assert catalog.num_plurals == 3, "Russian needs three plural forms"
    assert not catalog.fuzzy, "the catalogue header is marked fuzzy"
    assert _ids(catalog) == _ids(template), "ru/messages.po is not updated from messages.pot"
    assert not catalog.obsolete, f"obsolete entries left behind: {list(catalog.obsolete)}"

    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if not all(strings) or len(strings) != (catalog.num_plurals if message.pluralizable else 1):
            problems.append(f"untranslated: {ids[0]!r}")
            continue
        expected, _ = _directives(ids[-1])
        for string in strings:
            found, rest = _directives(string)
            # A plural form may leave out the number ("одна минута"), never invent a name.
            same = (
                found == expected
                if not message.pluralizable
                else ({name for name, _ in found} <= {name for name, _ in expected})
            )
            if not same:
                problems.append(f"placeholders differ: {ids[0]!r} -> {string!r}")
            if "%" in rest:
                problems.append(f"stray %: {string!r}")
    problems += [
        f"{message.id!r}: {error}" for message, errors in catalog.check() for error in errors
    ]
    assert not problems, "\n".join(problems)


def test_the_english_catalogue_covers_the_same_messages():
    catalog = _read_po(_po_path("en"))
    assert str(catalog.locale) == "en"
    assert _ids(catalog) == _ids(_read_po(POT)), "en/messages.po is not updated from messages.pot"


def test_the_template_matches_the_strings_in_the_code(tmp_path):
    """Adding a string to the code without re-extracting the catalogue fails here."""
    fresh = tmp_path / "messages.pot"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    in_code, committed = _ids(_read_po(fresh)), _ids(_read_po(POT))
    assert in_code, "extraction found no messages; is babel.cfg right?"
    missing, stale = sorted(in_code - committed), sorted(committed - in_code)
    assert not missing and not stale, (
        f"messages.pot is out of date.\nIn the code but not the catalogue: {missing}\n"
        f"In the catalogue but no longer in the code: {stale}"
    )
    locations = [path for message in _read_po(POT) for path, _ in message.locations]
    assert locations and all(not Path(path).is_absolute() for path in locations)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalogue_matches_its_source(locale):
    """The committed .mo is what ``pybabel compile`` makes of the committed .po."""
    compiled = io.BytesIO()
    write_mo(compiled, _read_po(_po_path(locale)))
    compiled.seek(0)
    expected = read_mo(compiled)
    with _mo_path(locale).open("rb") as handle:
        committed = read_mo(handle)

    def hashable(value):
        return tuple(value) if isinstance(value, list) else value  # plural entries are lists

    def messages(catalog):
        return {hashable(m.id): hashable(m.string) for m in catalog if m.id}

    assert messages(committed) == messages(expected), (
        f"{locale}/messages.mo is stale: run pybabel compile -d app/translations"
    )
    assert committed.plural_forms == expected.plural_forms


# --- Pages ---------------------------------------------------------------------


def test_a_russian_workspace_works_in_russian(client, make, login):
    tenant, owner = make.workspace_with_owner(name="Пекарня на углу", language="ru")
    login(owner.email)
    page = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="ru">' in page.text
    assert ru("Hello, %(name)s.", name=owner.name) in page.text
    assert ru("Lead generation") in page.text
    assert ru("Sign out") in page.text
    assert "Sign out" not in page.text and "Lead generation" not in page.text


def test_an_english_workspace_stays_in_english(client, make, login):
    tenant, owner = make.workspace_with_owner(name="Corner Bakery", language="en")
    login(owner.email)
    page = client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "Sign out" in page.text and ru("Sign out") not in page.text


def test_a_user_who_chose_english_sees_english_in_a_russian_workspace(client, make, login, app):
    tenant, owner = make.workspace_with_owner(name="Пекарня на углу", language="ru")
    login(owner.email)
    assert '<html lang="ru">' in client.get("/").text
    client.post("/account/language", data={"language": "en", "next": "/"})

    # Another device: no session remembers the switch, only the account does.
    laptop = app.test_client()
    login(owner.email, test_client=laptop)
    page = laptop.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "Hello, " + owner.name in page.text and "Sign out" in page.text
    assert ru("Sign out") not in page.text


def test_the_login_page_follows_the_browser_then_the_visitors_choice(client):
    russian = client.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru">' in russian.text
    assert ru("Forgot your password?") in russian.text
    assert ru("Email") in russian.text  # the form's own labels too

    english = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Forgot your password?" in english.text

    client.post("/account/language", data={"language": "ru", "next": "/login"})
    chosen = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="ru">' in chosen.text and ru("Sign in") in chosen.text


def test_errors_are_explained_in_the_workspace_language(client, make, login):
    tenant, owner = make.workspace_with_owner(name="Пекарня на углу", language="ru")
    closer = make.member(tenant, Role.CLOSER)
    login(closer.email)
    refused = client.get("/team")
    assert refused.status_code == 404
    assert ru("There is nothing here.") in refused.text
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and ru("There is nothing here.") in missing.text


# --- Mail ------------------------------------------------------------------------


def _invite(client, email="new.closer@example.com"):
    return client.post("/team/invitations", data={"email": email, "role": "closer"})


def test_an_invitation_from_a_russian_workspace_is_written_in_russian(
    client, make, login, run_jobs, mailbox
):
    tenant, owner = make.workspace_with_owner(name="Пекарня", language="ru")
    login(owner.email)
    assert _invite(client).status_code == 302
    team = client.get("/team")
    assert ru("Invitation sent to %(email)s.", email="new.closer@example.com") in team.text

    assert run_jobs() == 1
    [message] = mailbox.to("new.closer@example.com")
    assert message["Subject"] == ru(
        "Invitation to the workspace “%(name)s” on Conveyor", name="Пекарня"
    )

    assert message.is_multipart()
    parts = {part.get_content_type() for part in message.walk() if not part.is_multipart()}
    assert {"text/plain", "text/html"} <= parts

    invites = ru(
        "%(inviter)s (%(email)s) invites you to join the workspace “%(name)s” on Conveyor.",
        inviter=owner.name,
        email=owner.email,
        name="Пекарня",
    )
    text, html = mailbox.text(message), mailbox.html(message)
    assert invites in text and invites in html
    assert ru("Accept the invitation and choose your password:") in text
    assert ru("The link works for 7 days. If you did not expect this, ignore this email.") in text
    assert ru("Accept the invitation") in html
    link = "http://conveyor.test/invitations/"
    assert link in text and link in html
    assert "invites you" not in text and "invites you" not in html


def test_a_long_russian_subject_keeps_every_space(client, make, login, run_jobs, mailbox):
    tenant, owner = make.workspace_with_owner(name="Пекарня на углу", language="ru")
    login(owner.email)
    _invite(client)
    run_jobs()
    [message] = mailbox.to("new.closer@example.com")
    assert message["Subject"] == ru(
        "Invitation to the workspace “%(name)s” on Conveyor", name=tenant.name
    )


def test_a_password_reset_reaches_a_member_of_a_russian_workspace_in_russian(
    client, make, run_jobs, mailbox
):
    tenant, owner = make.workspace_with_owner(name="Пекарня", language="ru")
    closer = make.member(tenant, Role.CLOSER)  # as `flask user add` makes them: no language set
    client.post("/password/forgot", data={"email": closer.email})
    assert run_jobs() == 1
    [message] = mailbox.to(closer.email)
    assert message["Subject"] == ru("Reset your Conveyor password")
    assert ru("Choose a new password") in mailbox.html(message)


def test_a_russian_workspace_gets_its_default_stages_in_russian(make):
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Stage

    tenant, _ = make.workspace_with_owner(language="ru")
    names = db.session.scalars(
        sa.select(Stage.name).where(Stage.tenant_id == tenant.id).order_by(Stage.position)
    ).all()
    assert names[0] == "Новый" and names[-1] == "Клиент"
