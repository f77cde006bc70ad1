"""Whatever is posted to a lead source's address, it gets a documented answer and is kept.

Hypothesis posts random and malformed bodies, content types and headers to
``POST /in/<token>``. Every answer must be one the public contract documents (README,
"Lead intake"): 200, 202, 400, 401, 404, 413, 415, 422 or 429 — never a crash — and
every post to a real address must add exactly one row to the source's inbox, recording
the answer given. Headers are latin-1 text without control characters: what a WSGI
server can pass on. (Past a source's cap of refused posts a minute they are only
counted, ``app.intake.cap``; the fuzzed sources' cap is lifted, so every post is kept.)
"""

import itertools
import json
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.intake import cap, signing
from app.intake.fields import FORM_CONTROL_FIELDS, KNOWN_FIELDS, MAX_BODY_BYTES
from app.models import InboxItem, SourceKind
from app.sources import services as sources

DOCUMENTED = frozenset({200, 202, 400, 401, 404, 413, 415, 422, 429})
_nonces = itertools.count(1)


def fuzz(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


class Intake:
    """One source's secret address, and what its inbox holds."""

    def __init__(self, client, source):
        self.client, self.source, self.token = client, source, source.intake_token

    def kept(self, source_id: int | None = None) -> int:
        query = sa.select(sa.func.count(InboxItem.id))
        if source_id is not None:
            query = query.where(InboxItem.source_id == source_id)
        return db.session.scalar(query.execution_options(all_tenants=True))

    def last_item(self) -> InboxItem:
        return db.session.scalar(
            sa.select(InboxItem)
            .where(InboxItem.source_id == self.source.id)
            .order_by(InboxItem.id.desc())
            .limit(1)
            .execution_options(all_tenants=True)
        )

    def post(self, body: bytes = b"", content_type: str | None = None, headers=None, token=None):
        """Post, and check the answer is documented and the post is in the inbox."""
        headers = dict(headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        before = self.kept(self.source.id)
        try:
            response = self.client.post(f"/in/{token or self.token}", data=body, headers=headers)
        except Exception as error:  # the test client re-raises what would be a 500
            raise AssertionError(f"500: intake raised {error!r}") from error
        answer = response.get_data()
        assert response.status_code in DOCUMENTED, f"{response.status_code}: {answer[:300]!r}"
        assert response.mimetype in ("application/json", "text/html"), response.mimetype
        if token is None:
            assert self.kept(self.source.id) == before + 1, "answered, but not kept in the inbox"
            assert self.last_item().http_status == response.status_code
        return response


@pytest.fixture(autouse=True)
def _every_refusal_kept(monkeypatch):
    monkeypatch.setattr(cap, "REFUSED_POSTS_KEPT_PER_MINUTE", 10**9)
    monkeypatch.setattr(cap, "REFUSED_BYTES_KEPT_PER_MINUTE", 10**12)


@pytest.fixture
def intake(app, make, client):
    tenant, _ = make.workspace_with_owner(name="Fuzzed bakery")
    source = sources.create_source(
        tenant, "Site form", SourceKind.SITE_FORM, rate_limit_per_minute=100000
    )
    return Intake(client, source)


@pytest.fixture
def signed_intake(app, make, client):
    tenant, _ = make.workspace_with_owner(name="Signed bakery")
    source = sources.create_source(
        tenant, "Partner API", SourceKind.PARTNER, signed=True, rate_limit_per_minute=100000
    )
    return Intake(client, source)


# --- Strategies -------------------------------------------------------------------------

# What a WSGI server hands over in a header: latin-1, no control characters.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=("Cc",))
)
BASE_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
    "application/xml",
    "application/merge-patch+json",
    "APPLICATION/JSON",
    "",
)
content_types = st.one_of(
    st.none(),
    st.sampled_from(BASE_TYPES),
    st.builds(
        "{}; {}".format,
        st.sampled_from(BASE_TYPES),
        st.sampled_from(
            [
                "charset=utf-8",
                "charset=latin-1",
                "charset=utf-16",
                "charset=",
                "boundary=xyz",
                "boundary=",
                'boundary="quoted"',
                "boundary=" + "b" * 200,
            ]
        ),
    ),
    st.builds("{}; {}".format, st.sampled_from(BASE_TYPES), header_text),
    header_text,
)
field_names = st.one_of(st.sampled_from(KNOWN_FIELDS + FORM_CONTROL_FIELDS), st.text(max_size=30))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.emails(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(field_names, inner, max_size=5)
    ),
    max_leaves=20,
)
lead_emails = st.one_of(st.emails(), st.just("anna@example.com"))
INVALID_UTF8 = [
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xc0\xaf",
    b"\x80",
]


# --- Any body, any type ---------------------------------------------------------------------


@fuzz(150)
@given(body=st.binary(max_size=3000), content_type=content_types)
def test_any_bytes_under_any_content_type(intake, body, content_type):
    intake.post(body, content_type)


@fuzz(150)
@given(value=json_values, ascii_only=st.booleans())
@example(value={"name": "Anna\x00", "email": "anna@example.com"}, ascii_only=True)
@example(value={"email": "anna@example.com", "note\x00": "\x00"}, ascii_only=False)
def test_json_of_any_shape(intake, value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    response = intake.post(body, "application/json")
    if isinstance(value, dict):
        assert response.status_code in (200, 202, 422)
    else:  # an array or a scalar is not a lead
        assert response.status_code == 400


@fuzz(40)
@given(
    depth=st.integers(1, 12000),
    opener=st.sampled_from(["[", '{"a": ']),
    beside_a_good_lead=st.booleans(),
)
@example(depth=5000, opener="[", beside_a_good_lead=False)
def test_deeply_nested_json(intake, depth, opener, beside_a_good_lead):
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    if beside_a_good_lead:
        nested = '{"email": "anna@example.com", "deep": ' + nested + "}"
    intake.post(nested.encode(), "application/json")


@fuzz(40)
@given(digits=st.integers(1, 20000), where=st.sampled_from(["value", "top"]))
@example(digits=5000, where="value")
def test_json_numbers_of_any_length(intake, digits, where):
    number = "7" * digits
    body = '{"email": "anna@example.com", "budget": ' + number + "}" if where == "value" else number
    intake.post(body.encode(), "application/json")


# --- Sizes, encodings, duplicate keys ------------------------------------------------------


@fuzz(40)
@given(
    size=st.one_of(
        st.integers(MAX_BODY_BYTES - 64, MAX_BODY_BYTES + 64),
        st.sampled_from(
            [MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES]
        ),
    ),
    encoding=st.sampled_from(["json", "form"]),
)
def test_bodies_around_the_64_kb_limit(intake, size, encoding):
    if encoding == "json":
        head, tail, content_type = (
            b'{"email": "anna@example.com", "message": "',
            b'"}',
            "application/json",
        )
    else:
        head, tail, content_type = (
            b"email=anna%40example.com&message=",
            b"",
            "application/x-www-form-urlencoded",
        )
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    response = intake.post(body, content_type)
    if size > MAX_BODY_BYTES:
        assert response.status_code == 413
        assert intake.last_item().body_truncated and len(intake.last_item().body) == MAX_BODY_BYTES
    else:  # read whole; the message is over its 5,000 characters
        assert response.status_code == 422
        assert "message" in response.json["fields"]


@fuzz(60)
@given(
    bad=st.sampled_from(INVALID_UTF8),
    cut=st.integers(0, 60),
    encoding=st.sampled_from(["json", "form"]),
    charset=st.sampled_from(["", "; charset=utf-8", "; charset=latin-1"]),
)
def test_invalid_utf8_is_unreadable(intake, bad, cut, encoding, charset):
    if encoding == "json":
        text, content_type = (
            b'{"name": "Anna Petrova", "email": "anna@example.com"}',
            "application/json",
        )
    else:
        text, content_type = (
            b"name=Anna+Petrova&email=anna%40example.com",
            "application/x-www-form-urlencoded",
        )
    cut = min(cut, len(text))
    response = intake.post(text[:cut] + bad + text[cut:], content_type + charset)
    assert response.status_code == 400


@fuzz(60)
@given(
    emails=st.lists(st.one_of(lead_emails, st.text(max_size=20)), min_size=2, max_size=4),
    encoding=st.sampled_from(["json", "form"]),
)
@example(emails=["", "0\x00"], encoding="json")  # a NUL is dropped, the rest is kept
def test_duplicate_keys_are_judged_on_the_value_kept(intake, emails, encoding):
    if encoding == "json":
        pairs = ", ".join(f'"email": {json.dumps(email)}' for email in emails)
        body, content_type = ("{" + pairs + "}").encode(), "application/json"
    else:
        body = urlencode([("email", email) for email in emails]).encode()
        content_type = "application/x-www-form-urlencoded"
    response = intake.post(body, content_type)
    assert response.status_code in (202, 422)
    kept = intake.last_item().fields.get("email")
    # Intake drops NUL characters (PostgreSQL cannot store them); the raw body keeps them.
    assert kept in {email.replace("\x00", "").strip() for email in emails}


@st.composite
def multipart_bodies(draw):
    boundary = draw(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80)
    )
    parts = draw(st.lists(st.tuples(field_names, st.binary(max_size=200)), max_size=6))
    chunks = []
    for name, value in parts:
        disposition = f'Content-Disposition: form-data; name="{name}"'.encode("utf-8", "replace")
        chunks.append(
            b"--" + boundary.encode() + b"\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"
        )
    body = b"".join(chunks) + b"--" + boundary.encode() + b"--\r\n"
    cut = draw(st.integers(0, len(body)))
    if draw(st.booleans()):
        body = body[:cut]  # a broken upload
    declared = draw(st.one_of(st.just(boundary), header_text))
    return body, f"multipart/form-data; boundary={declared}"


@fuzz(150)
@given(
    form=st.one_of(
        multipart_bodies(),
        st.builds(
            lambda pairs: (
                "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass"),
                "application/x-www-form-urlencoded",
            ),
            st.lists(st.tuples(field_names, st.text(max_size=40)), max_size=8),
        ),
    )
)
@example(form=(b"name=Anna%00&email=anna%40example.com", "application/x-www-form-urlencoded"))
def test_form_bodies_of_any_shape(intake, form):
    body, content_type = form
    intake.post(body, content_type)


# --- Headers -----------------------------------------------------------------------------------


long_header = st.one_of(header_text, st.integers(200, 12000).map(lambda n: ("é" + "k" * n)[:n]))


@fuzz(80)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["Idempotency-Key", "webhook-id", "User-Agent", "X-Forwarded-For", "Origin", "Referer"]
        ),
        long_header,
        max_size=6,
    ),
    email=lead_emails,
)
def test_long_and_latin1_headers(intake, headers, email):
    body = json.dumps({"name": "Anna", "email": email}).encode()
    response = intake.post(body, "application/json", headers=headers)
    assert response.status_code in (200, 202, 422)
    assert all(len(value) <= 500 for value in intake.last_item().headers.values())


key_endings = st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A), min_size=1, max_size=8)


@fuzz(40)
@given(
    header=st.sampled_from(["Idempotency-Key", "webhook-id"]),
    shared=st.integers(0, 600),
    endings=st.lists(key_endings, min_size=2, max_size=2, unique=True),
)
@example(header="Idempotency-Key", shared=300, endings=["a", "b"])
def test_different_idempotency_keys_are_never_one_lead(intake, header, shared, endings):
    """Two different keys (however long) are two posts: never "a duplicate" of each other."""
    prefix = f"order-{next(_nonces)}-" + "0" * shared  # keys differ from every earlier example
    answers = []
    for n, ending in enumerate(endings):
        body = json.dumps({"email": f"buyer{n}@example.com"}).encode()
        answers.append(intake.post(body, "application/json", headers={header: prefix + ending}))
    assert answers[0].status_code == 202
    assert answers[1].json.get("status") != "duplicate", (
        f"a different {header} of {len(prefix) + len(endings[1])} characters was taken "
        f"for a duplicate of post {answers[1].json['id']}"
    )


GOOD = "<a correct signature>"
NOW = "<now>"


@fuzz(100)
@given(
    message_id=st.one_of(st.just("msg_1"), header_text.filter(lambda s: s == s.strip())),
    timestamp=st.one_of(st.just(NOW), header_text, st.integers().map(str)),
    signatures=st.lists(
        st.one_of(st.just(GOOD), header_text, st.builds("v1,{}".format, header_text)), max_size=3
    ),
)
@example(message_id="msg_1", timestamp=NOW, signatures=["v1,é", GOOD])
def test_signed_source_with_any_signature_headers(signed_intake, message_id, timestamp, signatures):
    body = json.dumps({"email": f"signed{next(_nonces)}@example.com"}).encode()
    sent_at = str(int(time.time())) if timestamp == NOW else timestamp
    secret = signed_intake.source.signing_secret
    good = signing.sign(secret, message_id, int(sent_at), body) if timestamp == NOW else "v1,AAAA"
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": sent_at,
        "webhook-signature": " ".join(good if s == GOOD else s for s in signatures),
    }
    response = signed_intake.post(body, "application/json", headers=headers)
    if GOOD in signatures and timestamp == NOW and message_id:
        assert response.status_code in (200, 202)  # 200: a webhook-id seen before
    else:
        assert response.status_code == 401


signature_timestamps = st.one_of(
    st.just(NOW),
    header_text,
    st.integers().map(str),
    st.integers(10**12, 10**1000).map(str),
    st.integers(1, 5000).map(lambda n: "7" * n),
    st.builds("{}{}".format, st.sampled_from(["+", "-", " ", "0x", "1e"]), st.integers(0, 10**500)),
)


@fuzz(100)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["webhook-id", "webhook-timestamp", "webhook-signature", "Idempotency-Key"]
        ),
        header_text,
        max_size=4,
    ),
    timestamp=signature_timestamps,
    body=st.one_of(st.binary(max_size=500), json_values.map(lambda v: json.dumps(v).encode())),
    content_type=content_types,
)
@example(
    headers={"webhook-id": "msg_1", "webhook-signature": "v1,AAAA"},
    timestamp="7" * 400,
    body=b'{"email": "anna@example.com"}',
    content_type="application/json",
)
def test_no_signature_headers_and_body_give_a_5xx_or_leave_no_inbox_row(
    signed_intake, headers, timestamp, body, content_type
):
    """Issue 15, hole 10: a 400-digit timestamp answered 500 and stored nothing."""
    sent_at = str(int(time.time())) if timestamp == NOW else timestamp
    response = signed_intake.post(
        body, content_type, headers={**headers, "webhook-timestamp": sent_at}
    )
    if timestamp != NOW or "webhook-signature" not in headers:
        assert response.status_code == 401


@fuzz(50)
@given(
    token=st.text(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."),
        min_size=1,
        max_size=120,
    )
)
def test_unknown_addresses_answer_404_and_keep_nothing(intake, token):
    assume(token not in (intake.token, ".", ".."))
    before = intake.kept()
    response = intake.post(b'{"email": "anna@example.com"}', "application/json", token=token)
    assert response.status_code == 404 and response.json == {"error": "unknown intake address"}
    assert intake.kept() == before
