"""Configuration: read once, from the environment, with safe dev defaults.

Every secret has a dev default generated on first start and persisted under ``DATA_DIR``
(``./data`` by default) so ``python -m server`` works with no set-up. With
``PODIUM_ENV=production`` a missing secret is an error instead.
"""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlparse
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from server.kernel.signing_keys import parse_signing_keys

MB = 1000 * 1000
FILE_CATEGORIES = ("document", "image", "video", "audio", "archive")
DEFAULT_FILE_LIMITS = {"document": 50 * MB, "image": 10 * MB, "video": 500 * MB, "audio": 50 * MB,
                       "archive": 100 * MB}
DEFAULT_FILE_EXTENSIONS = {
    "document": ("pdf", "txt", "md", "csv", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt",
                 "ods", "odp", "rtf"),
    "image": ("png", "jpg", "jpeg", "gif", "webp"),
    "video": ("mp4", "webm", "ogv", "mov"),
    "audio": ("mp3", "ogg", "oga", "wav", "m4a"),
    "archive": ("zip", "gz", "tgz", "7z", "tar"),
}


class ConfigError(RuntimeError):
    """The environment does not describe a startable server."""


def normalise_database_url(url: str) -> str:
    """Rewrite Heroku-style ``postgres://`` / ``postgresql://`` URLs for asyncpg, and plain
    ``sqlite://`` for aiosqlite. asyncpg takes libpq's ``sslmode`` as ``ssl`` (SQLAlchemy
    passes query parameters to it as keywords), so ``?sslmode=require`` becomes ``?ssl=require``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("postgresql+asyncpg://") and "?" in url:
        base, query = url.split("?", 1)
        pairs = parse_qsl(query, keep_blank_values=True)
        if "ssl" not in {k for k, _ in pairs}:
            pairs = [("ssl" if k == "sslmode" else k, v) for k, v in pairs]
        else:
            pairs = [(k, v) for k, v in pairs if k != "sslmode"]
        return f"{base}?{urlencode(pairs)}" if pairs else base
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Config:
    port: int = 8000
    host: str = "0.0.0.0"
    data_dir: Path = Path("data")
    database_url: str = "sqlite+aiosqlite:///./data/podium.db"
    production: bool = False
    jwt_secret: str = ""
    # The media workers' own credential (WORKER_SECRET): worker tokens verify with it alone.
    worker_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    token_ttl_s: int = 7 * 24 * 3600
    allowed_origins: tuple[str, ...] = ()
    allow_signup: bool = True
    public_url: str | None = None
    # Behind a reverse proxy (docs/DEPLOYMENT.md, server/http/proxy.py): the client address and
    # scheme come from X-Forwarded-For / X-Forwarded-Proto; with TRUSTED_PROXIES only on
    # connections from those networks. Off: the headers are ignored.
    proxy_headers: bool = False
    trusted_proxies: tuple[str, ...] = ()
    # Bounds (PROTOCOL §2, ARCHITECTURE principle 4).
    max_frame_bytes: int = 64 * 1024
    # A request body read whole (every endpoint but the streamed uploads): 413 beyond it,
    # answered before the body is read (server/http/base.py).
    max_json_body_bytes: int = 1024 * 1024
    max_content_bytes: int = 16 * 1024
    heartbeat_s: int = 25
    heartbeat_timeout_s: int = 20
    auth_timeout_s: float = 10.0
    outgoing_soft_bytes: int = 256 * 1024
    outgoing_max_bytes: int = 1024 * 1024
    # Kernel send buffer per WebSocket (Linux doubles it). Without it loopback autotuning lets
    # the kernel hold ~4 MB per slow reader on top of our own bounded queue.
    socket_sndbuf_bytes: int = 64 * 1024
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
    shutdown_spread_s: float = 3.0
    # Live calls (PROTOCOL §2.2).
    ice_servers: tuple[dict, ...] = ()
    turn_secret: str | None = None
    turn_urls: tuple[str, ...] = ()
    turn_ttl_s: int = 3600
    call_end_without_instructor: bool = True
    call_end_grace_s: float = 60.0
    # Media routing (docs/CALLS.md "Media through Janus"): the Janus WebSocket API URLs (empty:
    # every call is a mesh), its api_secret, and the VideoRoom admin_key when rooms are locked.
    janus_urls: tuple[str, ...] = ()
    janus_api_secret: str | None = None
    janus_admin_key: str | None = None
    # Several Janus: a Janus whose connection stays down this long fails over (its sessions are
    # placed on another live one and their participants start again; docs/CALLS.md).
    janus_failover_grace_s: float = 3.0
    web_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "web")
    log_json: bool = False
    # Files (PROTOCOL §3 "Files", docs/FILES.md). An empty storage_url means
    # ``file://<data_dir>/files``; empty signing_keys (tests only; load_config always sets
    # them) means one random key per process.
    storage_url: str = ""
    # S3-compatible storage (STORAGE_URL=s3://bucket/prefix); None credentials mean botocore's
    # chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, instance roles).
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_addressing_style: str = "auto"
    signing_keys: tuple[tuple[str, bytes], ...] = ()
    signed_url_max_ttl_s: int = 3600
    file_limits: dict = field(default_factory=lambda: dict(DEFAULT_FILE_LIMITS))
    file_extensions: dict = field(default_factory=lambda: dict(DEFAULT_FILE_EXTENSIONS))
    upload_max_files: int = 100
    upload_max_parts: int = 120  # file parts plus form fields
    upload_max_request_bytes: int = 1024 * MB
    # Several web processes (docs/SCALING.md): Redis carries notices between them.
    redis_url: str | None = None
    metrics_token: str | None = None
    redis_prefix: str = "podium"
    redis_verify_tls: bool = True
    redis_max_connections: int = 16
    # Recording (docs/RECORDING.md).
    recording_start_timeout_s: float = 30.0
    recording_worker_grace_s: float = 30.0
    recording_max_asset_bytes: int = 8000 * MB
    # Accounts (docs/SECURITY.md, server/accounts/throttle.py): failed logins allowed per
    # LOGIN_WINDOW_S for one username from one address, for one address across usernames, and
    # for one username across addresses (not applied to an address the user signed in from
    # lately); sign-ups per address per hour; the minimum zxcvbn score of a new password; how
    # old an open socket's view of its user's role may get before it is read again.
    login_window_s: int = 900
    login_failures_per_user_address: int = 10
    login_failures_per_address: int = 100
    login_failures_per_user: int = 50
    signups_per_address_per_hour: int = 100
    password_min_score: int = 3
    role_recheck_s: float = 15.0

    def origin_allowed(self, origin: str, host: str) -> bool:
        """A browser origin may call the API and open /ws: the same host, or listed in
        ALLOWED_ORIGINS (``*`` allows any)."""
        if origin in self.allowed_origins or "*" in self.allowed_origins:
            return True
        return urlparse(origin).netloc.lower() == host.lower()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Load or create the persisted dev secrets file (mode 0600)."""
    return kept_secrets(data_dir / "secrets.json", ("jwt_secret", "signing_key", "worker_secret"), 48)


def kept_secrets(path: Path, names: tuple[str, ...], nbytes: int) -> dict[str, str]:
    """The JSON file of secrets at ``path`` (mode 0600, written atomically), with a fresh
    random secret for each of ``names`` it did not hold yet; existing ones are kept."""
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in names:
        if not stored.get(name):
            stored[name] = secrets.token_urlsafe(nbytes)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.replace(tmp, path)
    return stored


def _networks(value: str) -> tuple[str, ...]:
    """``TRUSTED_PROXIES``: comma-separated IP addresses or CIDR networks, normalised."""
    networks = []
    for item in _split(value):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _ice_servers(value: str) -> tuple[dict, ...]:
    """``ICE_SERVERS``: a JSON list of RTCIceServer objects, or comma-separated URLs."""
    value = value.strip()
    if not value:
        return ()
    if value.startswith("["):
        try:
            servers = json.loads(value)
        except ValueError as e:
            raise ConfigError(f"ICE_SERVERS is not valid JSON: {e}") from None
        if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
            raise ConfigError("ICE_SERVERS must be a list of objects with 'urls'")
        return tuple(servers)
    return tuple({"urls": [u]} for u in _split(value))


def _janus_urls(value: str) -> tuple[str, ...]:
    """``JANUS_URLS`` (or ``JANUS_URL``): comma-separated ``ws://`` / ``wss://`` URLs of Janus's
    WebSocket API."""
    urls = tuple(_split(value))
    for url in urls:
        if urlparse(url).scheme not in ("ws", "wss") or not urlparse(url).hostname:
            raise ConfigError(f"JANUS_URLS: {url!r} is not a ws:// or wss:// URL")
    return urls


def _file_settings(env: dict[str, str]) -> tuple[dict, dict]:
    """``FILE_MAX_MB_<CATEGORY>`` (decimal megabytes) and ``FILE_EXTENSIONS_<CATEGORY>``
    (comma-separated, no dots) override the per-category defaults."""
    limits, extensions = dict(DEFAULT_FILE_LIMITS), dict(DEFAULT_FILE_EXTENSIONS)
    seen: dict[str, str] = {}
    for cat in FILE_CATEGORIES:
        raw = env.get(f"FILE_MAX_MB_{cat.upper()}", "").strip()
        if raw:
            try:
                limits[cat] = int(float(raw) * MB)
            except ValueError:
                raise ConfigError(f"FILE_MAX_MB_{cat.upper()} must be a number") from None
            if limits[cat] <= 0:
                raise ConfigError(f"FILE_MAX_MB_{cat.upper()} must be positive")
        raw = env.get(f"FILE_EXTENSIONS_{cat.upper()}")
        if raw is not None:
            exts = tuple(e.lower().lstrip(".") for e in _split(raw))
            for e in exts:
                if not e.isascii() or not e.isalnum():
                    raise ConfigError(f"FILE_EXTENSIONS_{cat.upper()}: bad extension {e!r}")
            extensions[cat] = exts
    for cat in FILE_CATEGORIES:
        for e in extensions[cat]:
            if e in seen and seen[e] != cat:
                raise ConfigError(f"extension {e!r} is in both {seen[e]} and {cat}")
            seen[e] = cat
    return limits, extensions


def load_config(env: dict[str, str] | None = None) -> Config:
    """Build the configuration from ``env`` (default ``os.environ``).

    Raises ConfigError when production is missing a secret or a value is malformed.
    """
    env = dict(os.environ if env is None else env)
    production = env.get("PODIUM_ENV", "").lower() == "production"
    data_dir = Path(env.get("DATA_DIR", "data"))
    database_url = normalise_database_url(
        env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir.as_posix()}/podium.db"
    )
    algorithms = tuple(_split(env.get("JWT_ALGORITHMS", ""))) or None
    public_key = env.get("JWT_PUBLIC_KEY") or None
    if public_key and public_key.startswith("@"):
        public_key = Path(public_key[1:]).read_text()
    jwt_secret = env.get("JWT_SECRET", "")
    if not jwt_secret:
        if production:
            raise ConfigError("JWT_SECRET is required when PODIUM_ENV=production")
        jwt_secret = _dev_secrets(data_dir)["jwt_secret"]
    if len(jwt_secret.encode()) < 32:
        raise ConfigError("JWT_SECRET must be at least 32 bytes")
    if algorithms is None:
        algorithms = ("HS256",) + (("RS256", "ES256") if public_key else ())
    if "none" in [a.lower() for a in algorithms]:
        raise ConfigError("JWT_ALGORITHMS may not contain 'none'")
    try:
        port = int(env.get("PORT", "8000"))
        rate_per_s = float(env.get("RATE_LIMIT_PER_S", "20"))
        rate_burst = int(env.get("RATE_LIMIT_BURST", "60"))
        upload_rate_per_min = float(env.get("UPLOAD_RATE_PER_MIN", "60"))
        upload_burst = int(env.get("UPLOAD_BURST", "30"))
        link_rate_per_min = float(env.get("LINK_RATE_PER_MIN", "300"))
        link_burst = int(env.get("LINK_BURST", "100"))
        heartbeat_s = int(env.get("HEARTBEAT_S", "25"))
        turn_ttl_s = int(env.get("TURN_TTL_S", "3600"))
        call_end_grace_s = float(env.get("CALL_END_GRACE_S", "60"))
        janus_failover_grace_s = float(env.get("JANUS_FAILOVER_GRACE_S", "3"))
        signed_url_max_ttl_s = int(env.get("SIGNED_URL_MAX_TTL_S", "3600"))
        upload_max_request_bytes = int(float(env.get("UPLOAD_MAX_REQUEST_MB", "1024")) * MB)
        recording_start_timeout_s = float(env.get("RECORDING_START_TIMEOUT_S", "30"))
        recording_worker_grace_s = float(env.get("RECORDING_WORKER_GRACE_S", "30"))
        recording_max_asset_bytes = int(float(env.get("RECORDING_MAX_ASSET_MB", "8000")) * MB)
        redis_max_connections = int(env.get("REDIS_MAX_CONNECTIONS", "16"))
        login_window_s = int(env.get("LOGIN_WINDOW_S", "900"))
        login_failures_per_user_address = int(env.get("LOGIN_FAILURES_PER_USER_ADDRESS", "10"))
        login_failures_per_address = int(env.get("LOGIN_FAILURES_PER_ADDRESS", "100"))
        login_failures_per_user = int(env.get("LOGIN_FAILURES_PER_USER", "50"))
        signups_per_address_per_hour = int(env.get("SIGNUPS_PER_ADDRESS_PER_HOUR", "100"))
        password_min_score = int(env.get("PASSWORD_MIN_SCORE", "3"))
    except ValueError as e:
        raise ConfigError(f"malformed number in environment: {e}") from None
    if min(login_window_s, login_failures_per_user_address, login_failures_per_address,
           login_failures_per_user, signups_per_address_per_hour) < 1:
        raise ConfigError("LOGIN_* and SIGNUPS_PER_ADDRESS_PER_HOUR must be at least 1")
    if not 0 <= password_min_score <= 4:
        raise ConfigError("PASSWORD_MIN_SCORE must be from 0 to 4 (zxcvbn's scale)")
    if min(rate_per_s, upload_rate_per_min, link_rate_per_min) <= 0 or min(rate_burst, upload_burst, link_burst) < 1:
        raise ConfigError("rates must be positive and bursts at least 1")
    if not 4 <= redis_max_connections <= 1000:
        raise ConfigError("REDIS_MAX_CONNECTIONS must be from 4 to 1000")
    if signed_url_max_ttl_s <= 0 or upload_max_request_bytes <= 0:
        raise ConfigError("SIGNED_URL_MAX_TTL_S and UPLOAD_MAX_REQUEST_MB must be positive")
    s3_addressing_style = (env.get("S3_ADDRESSING_STYLE") or "auto").lower()
    if s3_addressing_style not in ("auto", "path", "virtual"):
        raise ConfigError("S3_ADDRESSING_STYLE must be auto, path or virtual")
    if env.get("SIGNING_KEYS", "").strip():
        try:
            signing_keys = tuple(parse_signing_keys(env["SIGNING_KEYS"]))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    elif production:
        raise ConfigError("SIGNING_KEYS is required when PODIUM_ENV=production")
    else:
        signing_keys = (("dev", _dev_secrets(data_dir)["signing_key"].encode()),)
    worker_secret = env.get("WORKER_SECRET", "")
    if not worker_secret:
        if production:
            raise ConfigError("WORKER_SECRET is required when PODIUM_ENV=production")
        worker_secret = _dev_secrets(data_dir)["worker_secret"]
    if len(worker_secret.encode()) < 32:
        raise ConfigError("WORKER_SECRET must be at least 32 bytes")
    if worker_secret == jwt_secret:
        raise ConfigError("WORKER_SECRET must differ from JWT_SECRET")
    file_limits, file_extensions = _file_settings(env)
    janus_urls = _janus_urls(env.get("JANUS_URLS") or env.get("JANUS_URL") or "")
    if janus_urls and production and not env.get("JANUS_API_SECRET"):
        raise ConfigError("JANUS_API_SECRET is required with JANUS_URL(S) when PODIUM_ENV=production")
    proxy_headers = _flag(env.get("PROXY_HEADERS"), False)
    trusted_proxies = _networks(env.get("TRUSTED_PROXIES", ""))
    if trusted_proxies and not proxy_headers:
        raise ConfigError("TRUSTED_PROXIES is set but PROXY_HEADERS is off: set PROXY_HEADERS=1 too")
    return Config(
        port=port,
        host=env.get("HOST", "0.0.0.0"),
        data_dir=data_dir,
        database_url=database_url,
        production=production,
        jwt_secret=jwt_secret,
        worker_secret=worker_secret,
        jwt_public_key=public_key,
        jwt_algorithms=algorithms,
        jwt_audience=env.get("JWT_AUDIENCE") or None,
        jwt_issuer=env.get("JWT_ISSUER") or None,
        allowed_origins=tuple(_split(env.get("ALLOWED_ORIGINS", ""))),
        allow_signup=_flag(env.get("ALLOW_SIGNUP"), True),
        public_url=env.get("PUBLIC_URL") or None,
        proxy_headers=proxy_headers,
        trusted_proxies=trusted_proxies,
        heartbeat_s=heartbeat_s,
        rate_per_s=rate_per_s,
        rate_burst=rate_burst,
        upload_rate_per_min=upload_rate_per_min,
        upload_burst=upload_burst,
        link_rate_per_min=link_rate_per_min,
        link_burst=link_burst,
        log_json=_flag(env.get("LOG_JSON"), False),
        ice_servers=_ice_servers(env.get("ICE_SERVERS", "")),
        turn_secret=env.get("TURN_SECRET") or None,
        turn_urls=tuple(_split(env.get("TURN_URLS", ""))),
        turn_ttl_s=turn_ttl_s,
        call_end_without_instructor=_flag(env.get("CALL_END_WITHOUT_INSTRUCTOR"), True),
        call_end_grace_s=call_end_grace_s,
        janus_urls=janus_urls,
        janus_api_secret=env.get("JANUS_API_SECRET") or None,
        janus_admin_key=env.get("JANUS_ADMIN_KEY") or None,
        janus_failover_grace_s=janus_failover_grace_s,
        storage_url=env.get("STORAGE_URL") or f"file://{data_dir.as_posix()}/files",
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        s3_region=env.get("S3_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        s3_access_key_id=env.get("S3_ACCESS_KEY_ID") or None,
        s3_secret_access_key=env.get("S3_SECRET_ACCESS_KEY") or None,
        s3_addressing_style=s3_addressing_style,
        signing_keys=signing_keys,
        signed_url_max_ttl_s=signed_url_max_ttl_s,
        file_limits=file_limits,
        file_extensions=file_extensions,
        upload_max_request_bytes=upload_max_request_bytes,
        redis_url=env.get("REDIS_URL") or None,
        metrics_token=env.get("METRICS_TOKEN") or None,
        redis_prefix=env.get("REDIS_PREFIX") or "podium",
        redis_verify_tls=_flag(env.get("REDIS_VERIFY_TLS"), True),
        redis_max_connections=redis_max_connections,
        recording_start_timeout_s=recording_start_timeout_s,
        recording_worker_grace_s=recording_worker_grace_s,
        recording_max_asset_bytes=recording_max_asset_bytes,
        login_window_s=login_window_s,
        login_failures_per_user_address=login_failures_per_user_address,
        login_failures_per_address=login_failures_per_address,
        login_failures_per_user=login_failures_per_user,
        signups_per_address_per_hour=signups_per_address_per_hour,
        password_min_score=password_min_score,
    )
