"""Signed download URLs: MAC coverage, expiry, rotation, path encoding, and the link wire of a file."""
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from server.files.links import ExpiredSignature, InvalidSignature, file_link, sign, signed_path, verify
from server.kernel.errors import Forbidden
from server.kernel.signing_keys import SigningKeys

NOW = 1_700_000_000.5
OLD = ("k1", b"o" * 32)
NEW = ("k2", b"n" * 48)


def keys(*pairs):
    return SigningKeys(list(pairs) or [NEW])


def split(path):
    """Turn a signed path back into (file_id, decoded name, query dict) as a server would."""
    parts = urlsplit(path)
    _, dl, file_id, name = parts.path.split("/")
    assert dl == "dl"
    query = {k: v for k, v in parse_qs(parts.query, keep_blank_values=True, strict_parsing=True).items()}
    return unquote(file_id), unquote(name), query


def test_round_trip():
    """A freshly signed query verifies and returns its disposition and holder."""
    k = keys()
    q = sign(k, "GET", "f1", "notes.pdf", int(NOW) + 60, "inline", 7)
    assert set(q) == {"exp", "kid", "disp", "u", "sig"} and q["kid"] == "k2" and q["u"] == "7"
    assert verify(k, "GET", "f1", "notes.pdf", q, NOW) == ("inline", 7)


def test_errors_are_forbidden():
    """Both signature errors map to HTTP 403 through the shared error table."""
    assert InvalidSignature("x").status == 403 and ExpiredSignature("x").status == 403
    assert issubclass(InvalidSignature, Forbidden)


@pytest.mark.parametrize("field,args,query_change", [
    ("method", {"method": "PUT"}, {}),
    ("file_id", {"file_id": "f2"}, {}),
    ("name", {"name": "notes.pdf "}, {}),
    ("exp", {}, {"exp": str(int(NOW) + 61)}),
    ("disp", {}, {"disp": "attachment"}),
    ("kid", {}, {"kid": "k1"}),
    ("holder", {}, {"u": "8"}),
    ("holder-format", {}, {"u": "7a"}),
    ("sig", {}, {"sig": "A" * 43}),
])
def test_tampered_field_rejected(field, args, query_change):
    """Changing any signed field (method, file id, name, exp, disp, kid, holder, sig) → InvalidSignature."""
    k = keys(NEW, OLD)
    q = sign(k, "GET", "f1", "notes.pdf", int(NOW) + 60, "inline", 7)
    call = {"method": "GET", "file_id": "f1", "name": "notes.pdf"} | args
    with pytest.raises(InvalidSignature):
        verify(k, call["method"], call["file_id"], call["name"], q | query_change, NOW)


@pytest.mark.parametrize("bad", [
    {"exp": None}, {"kid": None}, {"disp": None}, {"sig": None},
    {"exp": "1e12"}, {"exp": "-5"}, {"exp": " 123"}, {"exp": "12.5"},
    {"disp": "render"}, {"kid": "nope"}, {"kid": "../k2"}, {"sig": "short"},
    {"sig": "é" * 43},
])
def test_malformed_query_rejected(bad):
    """Missing fields, non-integer expiry, unknown disposition or kid, malformed sig → InvalidSignature."""
    k = keys()
    q = sign(k, "GET", "f1", "a.txt", int(NOW) + 60, "attachment", 7)
    q = {key: v for key, v in (q | bad).items() if v is not None}
    with pytest.raises(InvalidSignature):
        verify(k, "GET", "f1", "a.txt", q, NOW)


def test_tornado_style_query_values():
    """Query values given as one-element lists of bytes verify; repeated values are rejected."""
    k = keys()
    q = sign(k, "GET", "f1", "a.txt", int(NOW) + 60, "attachment", 7)
    tq = {key: [v.encode()] for key, v in q.items()}
    assert verify(k, "GET", "f1", "a.txt", tq, NOW) == ("attachment", 7)
    with pytest.raises(InvalidSignature):
        verify(k, "GET", "f1", "a.txt", tq | {"disp": [b"inline", b"attachment"]}, NOW)


def test_expired():
    """An authentic URL at or after its expiry → ExpiredSignature; a second before, it verifies."""
    k = keys()
    exp = int(NOW) + 10
    q = sign(k, "GET", "f1", "a.txt", exp, "attachment", 7)
    assert verify(k, "GET", "f1", "a.txt", q, exp - 1) == ("attachment", 7)
    with pytest.raises(ExpiredSignature):
        verify(k, "GET", "f1", "a.txt", q, exp)
    with pytest.raises(ExpiredSignature):
        verify(k, "GET", "f1", "a.txt", q, exp + 3600)


def test_tampered_and_expired_is_invalid():
    """A forged URL is reported invalid, not expired: the MAC is checked before the expiry."""
    k = keys()
    q = sign(k, "GET", "f1", "a.txt", int(NOW) - 10, "attachment", 7)
    with pytest.raises(InvalidSignature):
        verify(k, "GET", "f2", "a.txt", q, NOW)


def test_rotation():
    """An old key's URL verifies while the key is listed second and fails once it is removed."""
    old_only = keys(OLD)
    q = sign(old_only, "GET", "f1", "a.txt", int(NOW) + 60, "inline", 7)
    assert q["kid"] == "k1"
    rotated = keys(NEW, OLD)
    assert verify(rotated, "GET", "f1", "a.txt", q, NOW) == ("inline", 7)
    assert sign(rotated, "GET", "f1", "a.txt", int(NOW) + 60, "inline", 7)["kid"] == "k2"
    with pytest.raises(InvalidSignature):
        verify(keys(NEW), "GET", "f1", "a.txt", q, NOW)


def test_same_kid_other_secret_rejected():
    """A URL signed under a kid whose secret was replaced no longer verifies."""
    q = sign(keys(("k1", b"a" * 32)), "GET", "f1", "a.txt", int(NOW) + 60, "inline", 7)
    with pytest.raises(InvalidSignature):
        verify(keys(("k1", b"b" * 32)), "GET", "f1", "a.txt", q, NOW)


def test_first_key_signs():
    """The first listed key signs; its MAC is HMAC-SHA256, 43 url-safe chars without padding."""
    q = sign(keys(OLD, NEW), "GET", "f1", "a.txt", int(NOW) + 60, "inline", 7)
    assert q["kid"] == "k1" and len(q["sig"]) == 43 and "=" not in q["sig"]
    assert verify(keys(OLD), "GET", "f1", "a.txt", q, NOW) == ("inline", 7)


def test_field_boundaries_unambiguous():
    """Moving bytes between adjacent fields (file id / name) changes the MAC input."""
    k = keys()
    q = sign(k, "GET", "f1", "2\nx", int(NOW) + 60, "inline", 7)
    with pytest.raises(InvalidSignature):
        verify(k, "GET", "f1\n2", "x", q, NOW)
    with pytest.raises(InvalidSignature):
        verify(k, "GET", "f12", "\nx", q, NOW)


def test_signed_path_caps_expiry():
    """expires_in above the cap is capped; expires_at is floor(now) + ttl and is the URL's exp."""
    path, expires_at = signed_path(keys(), "f1", "a.txt", "attachment", 10**9, 900, NOW, 7)
    assert expires_at == int(NOW) + 900
    _, _, q = split(path)
    assert q["exp"] == [str(expires_at)]
    path, expires_at = signed_path(keys(), "f1", "a.txt", "attachment", 60, 900, NOW, 7)
    assert expires_at == int(NOW) + 60


@pytest.mark.parametrize("expires_in", [0, -1, 1.5, True, "60"])
def test_signed_path_rejects_bad_lifetime(expires_in):
    """A zero, negative or non-integer expires_in is a ValueError."""
    with pytest.raises(ValueError):
        signed_path(keys(), "f1", "a.txt", "inline", expires_in, 900, NOW, 7)


def test_signed_path_rejects_bad_disposition_and_dot_names():
    """Unknown dispositions and the names '.'/'..' (collapsed by clients) are ValueErrors."""
    for disp, name in (("render", "a.txt"), ("inline", "."), ("inline", "..")):
        with pytest.raises(ValueError):
            signed_path(keys(), "f1", name, disp, 60, 900, NOW, 7)


@pytest.mark.parametrize("name", [
    "../../etc/passwd", "a/b/c.txt", "what?.pdf", "#hash#.txt", "100%.txt", "%2e%2e",
    "résumé – 履歴書.pdf", "emoji 🎓.png", "a+b c&d=e;f.txt", "line\nbreak.txt", "...",
])
def test_path_encoding_round_trip(name):
    """Awkward names stay one path segment, decode back exactly, and verify."""
    k = keys()
    path, _ = signed_path(k, 42, name, "attachment", 60, 900, NOW, 7)
    raw_path = urlsplit(path).path
    assert raw_path.count("/") == 3 and "?" not in raw_path and "#" not in path
    file_id, decoded, q = split(path)
    assert file_id == "42" and decoded == name
    assert verify(k, "GET", file_id, decoded, q, NOW) == ("attachment", 7)
    encoded = raw_path.split("/")[3]
    if encoded != name:  # the MAC covers the decoded name, not its percent-encoding
        with pytest.raises(InvalidSignature):
            verify(k, "GET", file_id, encoded, q, NOW)


def test_file_link_attachment_only():
    """file_link gives {url, expires_at}: the base URL, then a GET path that verifies with the asked disposition."""
    k = keys()
    f = SimpleNamespace(id="f1", name="notes.pdf", content_type="application/pdf")
    link = file_link(k, f, holder=7, base_url="https://podium.example", expires_in=60, max_ttl_s=900, now=NOW,
                     disposition="inline")
    assert set(link) == {"url", "expires_at"} and link["url"].startswith("https://podium.example/dl/f1/")
    file_id, name, q = split(link["url"].removeprefix("https://podium.example"))
    assert verify(k, "GET", file_id, name, q, NOW) == ("inline", 7)
    assert q["exp"] == [str(int(NOW) + 60)] and link["expires_at"] == "2023-11-14T22:14:20.000Z"


@pytest.mark.parametrize("content_type,inline", [("video/mp4", True), ("image/jpeg", True),
                                                  ("application/json", False), ("text/vtt", False)])
def test_file_link_inline_url_for_inline_safe_types(content_type, inline):
    """with_inline adds inline_url (same expiry, disposition inline) only for types safe to show in the page."""
    k = keys()
    f = SimpleNamespace(id="f1", name="a.bin", content_type=content_type)
    link = file_link(k, f, holder=7, base_url="", expires_in=10**9, max_ttl_s=900, now=NOW, with_inline=True)
    assert ("inline_url" in link) == inline
    _, _, q = split(link["url"])
    assert q["disp"] == ["attachment"] and q["exp"] == [str(int(NOW) + 900)]
    if inline:
        file_id, name, qi = split(link["inline_url"])
        assert verify(k, "GET", file_id, name, qi, NOW) == ("inline", 7) and qi["exp"] == q["exp"]
