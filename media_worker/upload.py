"""The worker's HTTP calls (PROTOCOL §2.3): the recording's timeline, streamed asset uploads
(``PUT /api/recordings/{id}/assets/{name}``, retried) and ``POST …/complete``."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from media_worker.config import WorkerConfig

log = logging.getLogger("podium.worker.upload")

CHUNK = 1024 * 1024
ATTEMPTS = 4


def _headers(config: WorkerConfig, extra: dict | None = None) -> dict:
    return {"Authorization": f"Bearer {config.current_token()}", "X-Worker-Id": config.worker_id, **(extra or {})}


async def _retrying(what: str, attempt_fn) -> Any:
    """Retry on connection errors and 5xx (a web process restarting); 4xx is final."""
    delay = 1.0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await attempt_fn()
        except HTTPClientError as e:
            if e.code < 500 and e.code != 599:
                body = e.response.body.decode(errors="replace")[:300] if e.response else ""
                raise RuntimeError(f"{what}: HTTP {e.code} {body}") from None
            err: Exception = e
        except OSError as e:
            err = e
        if attempt == ATTEMPTS:
            raise RuntimeError(f"{what} failed after {ATTEMPTS} attempts: {err}")
        log.warning("%s failed (%s); retrying in %.0f s", what, err, delay)
        await asyncio.sleep(delay)
        delay *= 2


async def fetch_timeline(config: WorkerConfig, recording_id: str) -> dict:
    async def attempt() -> dict:
        r = await AsyncHTTPClient().fetch(HTTPRequest(
            f"{config.server_url}/api/recordings/{recording_id}/timeline", headers=_headers(config),
            request_timeout=60))
        return json.loads(r.body)

    return await _retrying(f"timeline of recording {recording_id}", attempt)


async def upload_asset(config: WorkerConfig, recording_id: str, name: str, path: Path) -> dict:
    size = path.stat().st_size

    async def body(write) -> None:
        with open(path, "rb") as f:
            while True:
                chunk = await asyncio.to_thread(f.read, CHUNK)
                if not chunk:
                    return
                await write(chunk)

    async def attempt() -> dict:
        r = await AsyncHTTPClient().fetch(HTTPRequest(
            f"{config.server_url}/api/recordings/{recording_id}/assets/{name}", method="PUT",
            headers=_headers(config, {"Content-Length": str(size), "Content-Type": "application/octet-stream"}),
            body_producer=body, request_timeout=3600))
        return json.loads(r.body)["asset"]

    stored = await _retrying(f"upload of {name}", attempt)
    log.info("recording %s: uploaded %s (%d bytes)", recording_id, name, size)
    return stored


async def complete(config: WorkerConfig, recording_id: str, assets: list[dict], duration_s: float | None) -> dict:
    async def attempt() -> dict:
        r = await AsyncHTTPClient().fetch(HTTPRequest(
            f"{config.server_url}/api/recordings/{recording_id}/complete", method="POST",
            headers=_headers(config, {"Content-Type": "application/json"}),
            body=json.dumps({"assets": assets, "duration_s": duration_s}), request_timeout=60))
        return json.loads(r.body)

    return await _retrying(f"completing recording {recording_id}", attempt)
