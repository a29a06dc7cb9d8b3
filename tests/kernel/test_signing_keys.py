"""Signing keys: SIGNING_KEYS parsing, rotation order, validation, and secrets kept out of reprs."""
import base64

import pytest

from server.kernel.signing_keys import SigningKeys, parse_signing_keys


def keys():
    return SigningKeys([("k2", b"n" * 48)])


def test_secret_by_kid():
    """secret() finds a listed kid; unlisted and malformed kids are None."""
    k = SigningKeys([("k1", b"o" * 32), ("k2", b"n" * 48)])
    assert k.current == ("k1", b"o" * 32) and k.secret("k2") == b"n" * 48
    assert k.secret("k3") is None and k.secret("k/1") is None and k.secret("") is None


def test_repr_hides_secrets():
    """SigningKeys' repr lists key ids only."""
    assert "nnnn" not in repr(keys()) and "k2" in repr(keys())


def b64(raw: bytes, urlsafe=False, pad=True) -> str:
    s = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return s if pad else s.rstrip("=")


def test_parse_signing_keys():
    """kid:base64 entries parse in order, standard or url-safe, padded or not."""
    a, b = bytes(range(32)), bytes(range(200, 248))
    parsed = parse_signing_keys(f" k1:{b64(a)} , k2:{b64(b, urlsafe=True, pad=False)}")
    assert parsed == [("k1", a), ("k2", b)]
    assert SigningKeys(parsed).current == ("k1", a)


@pytest.mark.parametrize("value,message", [
    ("", "empty"),
    ("  ,  ", "empty"),
    ("k1:" + b64(b"x" * 32) + ",", "entry 2 is empty"),
    ("nokid", "kid:base64secret"),
    (":" + b64(b"x" * 32), "kid:base64secret"),
    ("k1:", "kid:base64secret"),
    ("k1:not base64!!", "not valid base64"),
    ("k1:" + b64(b"x" * 31), "shorter than 32"),
    ("k1:" + b64(b"x" * 32) + ",k1:" + b64(b"y" * 32), "duplicate"),
    ("k/1:" + b64(b"x" * 32), "must match"),
])
def test_parse_signing_keys_errors(value, message):
    """Empty values, malformed entries, bad base64, short secrets and duplicate kids are ValueErrors."""
    with pytest.raises(ValueError, match=message):
        parse_signing_keys(value)


def test_signing_keys_requires_a_key():
    """An empty key list is a ValueError."""
    with pytest.raises(ValueError):
        SigningKeys([])
