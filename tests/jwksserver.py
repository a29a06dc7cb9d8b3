"""A real JWKS endpoint on loopback for the tests (a small Tornado app on the test's loop): it
serves the public halves of the keys it is told to publish, with the ``Cache-Control`` it is
told, counts the requests it answers, and can be made to fail (``status``)."""
from __future__ import annotations

import json

import jwt
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tornado.testing import bind_unused_port
from tornado.httpserver import HTTPServer


class SigningKey:
    """A private key with its ``kid`` and algorithm, able to sign tokens."""

    def __init__(self, kid: str, alg: str = "RS256") -> None:
        self.kid, self.alg = kid, alg
        self.private = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256"
                        else ec.generate_private_key(ec.SECP256R1()))
        self._pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())

    def jwk(self) -> dict:
        algo = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        public = json.loads(algo.to_jwk(self.private.public_key()))
        public.pop("key_ops", None)
        return public | {"kid": self.kid, "alg": self.alg, "use": "sig"}

    def pem(self) -> bytes:
        return self._pem

    def sign(self, claims: dict, kid: str | None = "same") -> str:
        headers = {"kid": self.kid if kid == "same" else kid} if kid is not None else None
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


class JwksServer:
    def __init__(self, keys: list[dict] | None = None, cache_control: str | None = None) -> None:
        self.keys = list(keys or [])  # JWKs (dicts) published
        self.cache_control = cache_control
        self.status = 200
        self.requests = 0
        server = self

        class Handler(tornado.web.RequestHandler):
            def get(self) -> None:
                server.requests += 1
                if server.status != 200:
                    self.set_status(server.status)
                    self.finish("unavailable")
                    return
                if server.cache_control:
                    self.set_header("Cache-Control", server.cache_control)
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps({"keys": server.keys}))

        sock, self.port = bind_unused_port("127.0.0.1")
        self._http = HTTPServer(tornado.web.Application([(r"/jwks", Handler)]))
        self._http.add_sockets([sock])
        self.url = f"http://127.0.0.1:{self.port}/jwks"

    def stop(self) -> None:
        self._http.stop()
