"""Parse client JSON into a plain object, refusing what the database or UTF-8 could not hold."""
from __future__ import annotations

import json

from server.kernel.errors import BadRequest


def decode_json_object(raw: str | bytes) -> dict:
    """Parse a client JSON object; raise BadRequest for anything the database or UTF-8 could
    not hold (NUL characters, lone surrogates) as well as for malformed JSON."""
    try:
        obj = _DECODER.decode(raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not valid JSON") from None
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise BadRequest("must be a JSON object")
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    lowered = text.lower()
    # Escapes are the only way NULs and lone surrogates get in; only then walk the object.
    if "\\u0000" in lowered or "\\ud" in lowered:
        try:
            _check_strings(obj)
        except RecursionError:
            raise BadRequest("JSON nested too deeply") from None
    return obj


def _check_strings(value) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest("NUL characters are not allowed")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise BadRequest("strings must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k)
            _check_strings(v)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v)


def _no_constant(name: str):
    """NaN, Infinity and -Infinity are not JSON (RFC 8259): a browser's JSON.parse refuses them,
    so a frame that relayed one would break its receiver."""
    raise BadRequest(f"{name} is not valid JSON")


# One decoder for every frame (``json.loads`` with an argument builds a decoder per call).
_DECODER = json.JSONDecoder(parse_constant=_no_constant)
