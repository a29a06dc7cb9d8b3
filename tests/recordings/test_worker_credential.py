"""The media worker's own credential (issue 13.5): only a token minted from WORKER_SECRET acts
as a worker. Tokens signed with an LMS's key or with JWT_SECRET, whatever their claims, can
neither register as a worker, upload recording assets nor read a recording's timeline."""
from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.accounts.tokens import issue_worker_token
from tests.recordings.test_recordings import put_asset, recording_call, start_recording

LMS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
LMS_PUBLIC = LMS_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def config_overrides():
    return {"jwt_public_key": LMS_PUBLIC, "jwt_algorithms": ("HS256", "RS256"),
            "recording_start_timeout_s": 5.0, "recording_worker_grace_s": 5.0}


def forgeries(cfg, user_id: str) -> dict[str, str]:
    """Worker-looking tokens from every key that is not WORKER_SECRET."""
    exp = int(time.time()) + 600
    lms = LMS_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return {
        "lms key, sub 0 recorder": jwt.encode({"sub": "0", "role": "recorder", "exp": exp}, lms, algorithm="RS256"),
        "lms key, sub worker": jwt.encode({"sub": "worker", "role": "recorder", "exp": exp}, lms, algorithm="RS256"),
        "lms key, a user as recorder": jwt.encode({"sub": user_id, "role": "recorder", "exp": exp}, lms,
                                                  algorithm="RS256"),
        "jwt secret, sub worker": jwt.encode({"sub": "worker", "role": "recorder", "exp": exp}, cfg.jwt_secret,
                                             algorithm="HS256"),
        "jwt secret, a user as recorder": jwt.encode({"sub": user_id, "role": "recorder", "exp": exp},
                                                     cfg.jwt_secret, algorithm="HS256"),
    }


async def test_no_token_but_a_worker_secret_one_registers_as_a_worker(server):
    """/ws closes 4401 for every forgery; a real worker token registers."""
    ana, _ = await server.user("ana", "instructor")
    for what, token in forgeries(server.deps.config, ana["id"]).items():
        for first_frame in (False, True):
            c = await server.client(token, first_frame_auth=first_frame, wait_hello=False)
            assert await c.wait_closed(5) == 4401, what
    assert "evil" not in server.deps.recordings.workers
    real = await server.client(issue_worker_token(server.deps.config))
    assert (await real.request("worker.register", capacity=1, worker_id="good"))["worker_id"] == "good"


async def test_forged_tokens_cannot_upload_assets_or_read_the_timeline(server):
    """Against a recording really held by worker w1: PUT asset and GET timeline with each
    forgery (and w1's worker id) answer 401; the real worker's token gets through."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    _, me = await server.http("GET", "/api/me", b_tok)
    for what, token in forgeries(server.deps.config, me["user"]["id"]).items():
        status, body = await put_asset(server, token, rid, "class.mp4", b"x" * 10)
        assert status == 401, (what, status, body)
        status, body = await server.http("GET", f"/api/recordings/{rid}/timeline", token)
        assert status == 401, (what, status, body)
    status, body = await put_asset(server, w_tok, rid, "class.mp4", b"x" * 10)
    assert status == 201, body
    status, body = await server.http("GET", f"/api/recordings/{rid}/timeline", w_tok)
    assert status == 200, body
