"""``python -m media_worker``: the Procfile ``worker`` line (docs/RECORDING.md).

Connects to ``SERVER_URL`` with a recorder token, registers its capacity, takes recording
jobs, and reconnects with backoff. At start it reclaims recordings left in ``WORKER_DIR`` by a
previous run that was killed (their files are readable up to the kill) and finishes them. On
SIGTERM it stops its recordings, tells the server, and finishes what it can within
``WORKER_SHUTDOWN_S``.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from media_worker.config import WorkerConfig, WorkerConfigError, load_worker_config
from media_worker.live.events import EVENTS_FILE, read_first_event

log = logging.getLogger("podium.worker")


def unfinished_recordings(work_dir: Path) -> list[dict]:
    """``{id, session, room}`` of every recording directory a previous run left behind. A
    directory whose manifest cannot be read is logged and left alone (nothing to reclaim it by)."""
    found = []
    for d in sorted(work_dir.glob("rec-*")):
        events = d / EVENTS_FILE
        if (d / "done").exists() or not events.is_file():
            continue
        try:
            first = read_first_event(events)
            if first.get("type") != "recording_started":
                raise ValueError("it does not start with recording_started")
            found.append({"id": str(first["recording"]), "session": str(first["session"]),
                          "room": str(first["room"])})
        except (OSError, ValueError, KeyError) as e:
            log.warning("%s cannot be reclaimed: unreadable %s (%s)", d, EVENTS_FILE, e)
    return found


def loopback_only() -> None:
    """Tests: gather ICE candidates on 127.0.0.1 only, so a test call never leaves the host."""
    only_addresses(("127.0.0.1",))


def only_addresses(addresses: tuple[str, ...]) -> None:
    """Tests: gather ICE candidates on ``addresses`` only (``WORKER_ICE_ADDRESSES``: e.g. the
    peers' veth address of an SFU test's network namespace, which Janus can reach)."""
    import aioice.ice

    v4 = [a for a in addresses if ":" not in a]
    v6 = [a for a in addresses if ":" in a]
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: \
        (v4 if use_ipv4 else []) + (v6 if use_ipv6 else [])


async def serve(config: WorkerConfig) -> None:
    from media_worker.client import WorkerClient
    from media_worker.job import Job

    config.work_dir.mkdir(parents=True, exist_ok=True)
    client = WorkerClient(config)
    for rec in unfinished_recordings(config.work_dir):
        log.info("recording %s was interrupted by a previous run; reclaiming it", rec["id"])
        job = Job(client, rec, {}, recovered=True)
        client.jobs[rec["id"]] = job
        job.begin()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.ensure_future(client.run())
    await stop.wait()
    log.info("stopping: %d recordings to finish", len(client.jobs))
    jobs = list(client.jobs.values())
    for job in jobs:
        job.request_stop("worker_shutdown")
    tasks = [j.task for j in jobs if j.task is not None]
    for job in jobs:
        await job.report_status("stopped", detail="worker_shutdown")
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=config.shutdown_s)
        if pending:
            log.warning("%d recordings did not finish within %.0f s; their files stay in %s for the "
                        "next start", len(pending), config.shutdown_s, config.work_dir)
    await client.close()
    runner.cancel()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_worker_config()
    except WorkerConfigError as e:
        sys.exit(f"worker configuration error: {e}")
    if config.ice_addresses:
        only_addresses(config.ice_addresses)
    elif config.loopback_only:
        loopback_only()
    log.info("media worker %s → %s (capacity %d, files in %s)", config.worker_id, config.server_url,
             config.capacity, config.work_dir)
    asyncio.run(serve(config))
    log.info("media worker stopped")


if __name__ == "__main__":
    main()
