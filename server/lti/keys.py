"""The tool's own RSA key pair: made on the first start (``python -m server``) under
``DATA_DIR`` (``lti_tool_key.pem``, mode 0600, never in the repository), published as a JWKS
at ``/lti/jwks``. Processes starting at once agree on one key (the file is linked into place)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "lti_tool_key.pem"


def load_or_create(data_dir: Path) -> rsa.RSAPrivateKey:
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)  # fails if another process made the key first: then that one counts
    except FileExistsError:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    finally:
        os.unlink(tmp)
    return key


def jwks(key: rsa.RSAPrivateKey) -> dict:
    """The public half as a JWK Set; ``kid`` is the key's RFC 7638 thumbprint."""
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.pop("key_ops", None)  # "use" says it (RFC 7517 §4.3: not both)
    public.update(kid=kid_of(key), alg="RS256", use="sig")
    return {"keys": [public]}


def kid_of(key: rsa.RSAPrivateKey) -> str:
    nums = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    canon = json.dumps({"e": b64(nums.e), "kty": "RSA", "n": b64(nums.n)}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
