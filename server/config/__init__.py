"""Configuration: read once, from the environment, with safe dev defaults.

Every secret has a dev default generated on first start and persisted under ``DATA_DIR``
(``./data`` by default) so ``python -m server`` works with no set-up. With
``PODIUM_ENV=production`` a missing secret is an error instead.

The settings are grouped by feature, one module each with its fields, their defaults and how
they are read from the environment (``from_env``): process, http, tokens, identity_provider,
workers, accounts, sockets, rates, calls, janus, storage, files, scaling, recordings, lti.
``Config`` is all of them in one frozen object, read as ``config.<setting>``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from server.config import (accounts, calls, files, http, identity_provider, janus, lti, process, rates, recordings,
                           scaling, sockets, storage, tokens, workers)
from server.config.environment import MB, ConfigError, Environment
from server.config.files import DEFAULT_FILE_EXTENSIONS, DEFAULT_FILE_LIMITS, FILE_CATEGORIES
from server.config.identity_provider import JWKS_ALGORITHMS, SITE_ROLES
from server.config.process import normalise_database_url
from server.config.secrets_file import kept_secrets

__all__ = ["Config", "ConfigError", "load_config", "normalise_database_url", "kept_secrets", "MB",
           "FILE_CATEGORIES", "DEFAULT_FILE_LIMITS", "DEFAULT_FILE_EXTENSIONS", "JWKS_ALGORITHMS", "SITE_ROLES"]


@dataclass(frozen=True)
class Config(process.ProcessSettings, http.HttpSettings, tokens.TokenSettings,
             identity_provider.IdentityProviderSettings, workers.WorkerSettings, accounts.AccountSettings,
             sockets.SocketSettings, rates.RateSettings, calls.CallSettings, janus.JanusSettings,
             storage.StorageSettings, files.FileSettings, scaling.ScalingSettings, recordings.RecordingSettings,
             lti.LtiSettings):
    """Every setting of the server, by feature in the modules of this package."""


def load_config(env: dict[str, str] | None = None) -> Config:
    """Build the configuration from ``env`` (default ``os.environ``).

    Raises ConfigError when production is missing a secret or a value is malformed.
    """
    environ = Environment(os.environ if env is None else env)
    # The order is the order of the refusals: the first one found is raised.
    values = tokens.from_env(environ)
    values |= process.from_env(environ)
    values |= rates.from_env(environ)
    values |= sockets.from_env(environ)
    values |= calls.from_env(environ)
    values |= recordings.from_env(environ)
    values |= lti.from_env(environ)
    values |= scaling.from_env(environ)
    values |= accounts.from_env(environ)
    values |= storage.from_env(environ)
    values |= files.from_env(environ)
    values |= workers.from_env(environ, values["jwt_secret"])
    values |= identity_provider.from_env(environ, values["jwt_public_key"], values["jwt_algorithms"])
    values |= janus.from_env(environ)
    values |= http.from_env(environ)
    return Config(**values)
