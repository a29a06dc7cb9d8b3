"""``python -m media_worker``: the Procfile ``worker`` line.

Recording is a later issue; until then the worker says so and idles, so a Procfile runner
(honcho, Heroku) keeps the process up without restarting it in a loop.
"""
import logging
import signal
import threading


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("podium.worker")
    log.info("media worker: no recording support exists yet; idling until stopped")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    log.info("media worker stopped")


if __name__ == "__main__":
    main()
