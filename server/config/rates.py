"""Rate limits (docs/SECURITY.md): token buckets for a user's WebSocket frames, for signaling,
for upload requests and for minting signed links."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class RateSettings:
    rate_per_s: float = 20.0
    rate_burst: int = 60
    rate_abuse_limit: int = 100
    # Signaling (rtc.*) has its own, larger bucket: a newcomer offers to every participant
    # and trickles a dozen candidates to each, which must not eat the chat budget.
    signal_rate_per_s: float = 300.0
    signal_burst: int = 1000
    # Uploads (requests) and signed-link minting have budgets of their own (docs/SECURITY.md).
    upload_rate_per_min: float = 60.0
    upload_burst: int = 30
    link_rate_per_min: float = 300.0
    link_burst: int = 100


def from_env(env: Environment) -> dict:
    """RateSettings' fields from the environment: rates positive, bursts at least 1."""
    rates = dict(rate_per_s=env.real("RATE_LIMIT_PER_S", 20),
                 upload_rate_per_min=env.real("UPLOAD_RATE_PER_MIN", 60),
                 link_rate_per_min=env.real("LINK_RATE_PER_MIN", 300))
    bursts = dict(rate_burst=env.integer("RATE_LIMIT_BURST", 60),
                  upload_burst=env.integer("UPLOAD_BURST", 30),
                  link_burst=env.integer("LINK_BURST", 100))
    if min(rates.values()) <= 0 or min(bursts.values()) < 1:
        raise ConfigError("rates must be positive and bursts at least 1")
    return rates | bursts
