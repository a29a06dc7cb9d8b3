"""A real HTTP/1.1 download client in its own process, for tests/files/test_sendfile_downloads.py
(so the clients neither share the server's event loop nor its GIL).

    python -m tests.files.httpget URL [--range R] [--if-range ETAG] [--head] [--abort-after N] [--parallel K] [--repeat M]

Prints one JSON line per response: ``{status, headers, bytes, sha256}``; with ``--abort-after``
the connection is closed after N body bytes (``{"aborted": true, bytes}``)."""
from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import threading
from urllib.parse import urlsplit


def get(url: str, rng: str | None, head: bool, abort_after: int | None, if_range: str | None = None) -> dict:
    u = urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    sock = socket.create_connection((u.hostname, u.port), timeout=60)
    lines = [f"{'HEAD' if head else 'GET'} {path} HTTP/1.1", f"Host: {u.netloc}", "Connection: close"]
    if rng:
        lines.append(f"Range: {rng}")
    if if_range:
        lines.append(f"If-Range: {if_range}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed before the headers")
        buf += chunk
    head_bytes, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}  # as sent (Tornado: "Etag")
    status = int(status_line.split()[1])
    length = 0 if head else int(headers.get("Content-Length", 0))
    digest = hashlib.sha256(rest)
    got = len(rest)
    view = memoryview(bytearray(4 << 20))
    while got < length:
        if abort_after is not None and got >= abort_after:
            sock.close()
            return {"aborted": True, "status": status, "bytes": got}
        n = sock.recv_into(view, min(len(view), length - got))
        if n == 0:
            break
        digest.update(view[:n])
        got += n
    sock.close()
    return {"status": status, "headers": headers, "bytes": got, "sha256": digest.hexdigest()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--range")
    p.add_argument("--if-range")
    p.add_argument("--head", action="store_true")
    p.add_argument("--abort-after", type=int)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    out: list[dict] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(a.repeat):
            r = get(a.url, a.range, a.head, a.abort_after, a.if_range)
            with lock:
                out.append(r)

    threads = [threading.Thread(target=worker) for _ in range(a.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in out:
        print(json.dumps(r))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
