"""The external identity provider's settings (server/config/identity_provider.py): what goes
together, and clear refusals of what does not."""
from __future__ import annotations

import pytest

from server.config import ConfigError, load_config

BASE = {"JWT_SECRET": "s" * 32, "WORKER_SECRET": "w" * 32}
IDP = {"JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json", "JWT_ISSUER": "https://idp.example",
       "JWT_AUDIENCE": "podium"}


def test_a_key_set_with_issuer_audience_claims_and_bounds(tmp_path):
    cfg = load_config(BASE | IDP | {"DATA_DIR": str(tmp_path), "JWT_AUTO_PROVISION": "1", "JWT_NAME_CLAIM": "display",
                                    "JWT_ROLE_CLAIM": "groups", "JWT_ROLE_MAP": "teachers=instructor, it staff=admin",
                                    "JWKS_REFETCH_S": "5", "JWKS_CACHE_S": "60", "JWKS_CACHE_MAX_S": "3600"})
    assert cfg.jwt_jwks_url == IDP["JWT_JWKS_URL"] and cfg.jwt_auto_provision
    assert cfg.jwt_algorithms == ("HS256", "RS256", "ES256")
    assert cfg.jwt_name_claim == "display" and cfg.jwt_role_claim == "groups"
    assert cfg.jwt_role_map == (("teachers", "instructor"), ("it staff", "admin"))
    assert (cfg.jwks_refetch_s, cfg.jwks_cache_s, cfg.jwks_cache_max_s) == (5.0, 60.0, 3600.0)
    plain = load_config(BASE | {"DATA_DIR": str(tmp_path)})
    assert plain.jwt_jwks_url is None and not plain.jwt_auto_provision and plain.jwt_algorithms == ("HS256",)


@pytest.mark.parametrize("env, words", [
    ({"JWT_JWKS_URL": "ftp://idp.example/jwks", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"}, "http(s) URL"),
    ({"JWT_JWKS_URL": IDP["JWT_JWKS_URL"], "JWT_AUDIENCE": "a"}, "needs JWT_ISSUER and JWT_AUDIENCE"),
    ({"JWT_JWKS_URL": IDP["JWT_JWKS_URL"], "JWT_ISSUER": "i"}, "needs JWT_ISSUER and JWT_AUDIENCE"),
    (IDP | {"JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----"}, "not both"),
    (IDP | {"JWT_ALGORITHMS": "HS256,PS512"}, "PS512 not supported"),
    ({"JWT_AUTO_PROVISION": "1"}, "need JWT_JWKS_URL"),
    (IDP | {"JWT_ROLE_MAP": "teachers=instructor"}, "JWT_ROLE_MAP needs JWT_ROLE_CLAIM"),
    (IDP | {"JWT_ROLE_CLAIM": "g", "JWT_ROLE_MAP": "teachers=root"}, "JWT_ROLE_MAP"),
    (IDP | {"JWT_ROLE_CLAIM": "g", "JWT_ROLE_MAP": "teachers"}, "JWT_ROLE_MAP"),
    (IDP | {"JWKS_REFETCH_S": "600", "JWKS_CACHE_S": "300"}, "in that order"),
    (IDP | {"JWKS_REFETCH_S": "0"}, "positive"),
    (IDP | {"JWKS_CACHE_S": "soon"}, "malformed number"),
])
def test_settings_that_do_not_go_together_are_refused(tmp_path, env, words):
    with pytest.raises(ConfigError) as e:
        load_config(BASE | env | {"DATA_DIR": str(tmp_path)})
    assert words in str(e.value)
