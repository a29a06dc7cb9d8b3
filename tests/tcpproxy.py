"""A TCP proxy on loopback, in a thread, that can make the Redis subscriber connections going
through it go silent: still open, their bytes from Redis swallowed — what a stuck NAT or load
balancer does, and what only the bus's canary can notice."""
from __future__ import annotations

import socket
import threading

from tests.procserver import free_port


class SilencingProxy:
    def __init__(self, target_port: int):
        self.target_port, self.port = target_port, free_port()
        self._lock = threading.Lock()
        self._conns: list[dict] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def silence_subscribers(self) -> int:
        """Swallow, from now on, what Redis sends to every connection that has subscribed."""
        with self._lock:
            subs = [c for c in self._conns if c["subscriber"]]
            for c in subs:
                c["silent"] = True
        return len(subs)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for c in self._conns:
                for s in (c["client"], c["server"]):
                    try:
                        s.close()
                    except OSError:
                        pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            conn = {"client": client, "server": server, "subscriber": False, "silent": False}
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._pump, args=(conn, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, False), daemon=True).start()

    def _pump(self, conn: dict, upstream: bool) -> None:
        src, dst = (conn["client"], conn["server"]) if upstream else (conn["server"], conn["client"])
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and b"SUBSCRIBE" in data.upper():
                    conn["subscriber"] = True
                if not upstream and conn["silent"]:
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
