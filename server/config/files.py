"""Files (PROTOCOL §3 "Files", docs/FILES.md): the keys that sign download links, the size
limit and extensions of each file category, and the bounds on one upload request."""
from __future__ import annotations

from dataclasses import dataclass, field

from server.config.environment import MB, ConfigError, Environment, split_list
from server.kernel.signing_keys import parse_signing_keys

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


@dataclass(frozen=True)
class FileSettings:
    # Empty signing_keys (tests only; load_config always sets them) means one random key per
    # process.
    signing_keys: tuple[tuple[str, bytes], ...] = ()
    signed_url_max_ttl_s: int = 3600
    file_limits: dict = field(default_factory=lambda: dict(DEFAULT_FILE_LIMITS))
    file_extensions: dict = field(default_factory=lambda: dict(DEFAULT_FILE_EXTENSIONS))
    upload_max_files: int = 100
    upload_max_parts: int = 120  # file parts plus form fields
    upload_max_request_bytes: int = 1024 * MB


def signing_keys(env: Environment) -> tuple[tuple[str, bytes], ...]:
    """``SIGNING_KEYS`` (``kid:base64secret,…``); in development the generated ``dev`` key."""
    if env.get("SIGNING_KEYS", "").strip():
        try:
            return tuple(parse_signing_keys(env.get("SIGNING_KEYS")))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return (("dev", env.dev_secret("SIGNING_KEYS", "signing_key").encode()),)


def categories(env: Environment) -> tuple[dict, dict]:
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
            exts = tuple(e.lower().lstrip(".") for e in split_list(raw))
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


def from_env(env: Environment) -> dict:
    """FileSettings' fields from the environment; SIGNING_KEYS is required in production."""
    signed_url_max_ttl_s = env.integer("SIGNED_URL_MAX_TTL_S", 3600)
    upload_max_request_bytes = env.megabytes("UPLOAD_MAX_REQUEST_MB", 1024)
    if signed_url_max_ttl_s <= 0 or upload_max_request_bytes <= 0:
        raise ConfigError("SIGNED_URL_MAX_TTL_S and UPLOAD_MAX_REQUEST_MB must be positive")
    keys = signing_keys(env)
    file_limits, file_extensions = categories(env)
    return dict(signing_keys=keys, signed_url_max_ttl_s=signed_url_max_ttl_s,
                file_limits=file_limits, file_extensions=file_extensions,
                upload_max_request_bytes=upload_max_request_bytes)
