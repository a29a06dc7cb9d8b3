"""The worker's credential (media_worker/credential.py): the recorder token it mints."""
from __future__ import annotations

import jwt
import pytest

from media_worker.credential import TOKEN_TTL_S, WorkerCredential, mint_worker_token

SECRET = "worker-secret-" + "w" * 40


def decode(token: str, secret: str = SECRET, **kw) -> dict:
    """Verify ``token`` as the server does (HS256 only, signature and expiry checked)."""
    return jwt.decode(token, secret, algorithms=["HS256"], **kw)


def test_minted_token_has_the_recorder_claims():
    """The token is HS256 with sub=worker, role=recorder, the name and exp = iat + 24 h."""
    token = mint_worker_token(SECRET, name="Recorder 2", now=1_000_000_000.7)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "worker", "role": "recorder", "name": "Recorder 2",
                      "iat": 1_000_000_000, "exp": 1_000_000_000 + TOKEN_TTL_S}


def test_minted_token_is_current_and_signed_with_that_secret_only():
    """A token minted now is not expired; another secret (say JWT_SECRET) fails to verify it."""
    token = mint_worker_token(SECRET)
    assert decode(token)["role"] == "recorder"
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token, "jwt-secret-" + "j" * 40)


def test_audience_and_issuer_are_claimed_when_configured():
    """With an audience and issuer the token passes aud/iss checks; without, it has neither."""
    token = mint_worker_token(SECRET, audience="podium", issuer="https://lms.example")
    claims = decode(token, audience="podium", issuer="https://lms.example")
    assert (claims["aud"], claims["iss"]) == ("podium", "https://lms.example")
    with pytest.raises(jwt.InvalidAudienceError):
        decode(token, audience="someone-else")
    assert not {"aud", "iss"} & set(decode(mint_worker_token(SECRET)))


def test_empty_secret_is_refused():
    """Minting from an empty secret raises instead of signing with an empty key."""
    with pytest.raises(ValueError, match="WORKER_SECRET"):
        mint_worker_token("")


def test_credential_mints_a_fresh_token_on_each_use():
    """A secret-based credential mints from the clock each time, so it never presents a stale token."""
    cred = WorkerCredential(secret=SECRET, name="R")
    first = decode(cred.current_token(clock=lambda: 1_000_000_000), options={"verify_exp": False})
    later = decode(cred.current_token(clock=lambda: 1_000_090_000), options={"verify_exp": False})
    assert later["iat"] - first["iat"] == 90_000 and later["exp"] > first["exp"]


def test_prebuilt_token_wins_over_the_secret():
    """WORKER_TOKEN is presented as given even when a secret is also set."""
    assert WorkerCredential(token="prebuilt.jwt.token", secret=SECRET).current_token() == "prebuilt.jwt.token"
