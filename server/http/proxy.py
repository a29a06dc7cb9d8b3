"""The client's address and scheme behind a reverse proxy (``PROXY_HEADERS``, ``TRUSTED_PROXIES``).

With ``PROXY_HEADERS`` off (the default) a request's address is the TCP peer's and its scheme
the connection's: what a client writes in ``X-Forwarded-For`` changes nothing. On, a request
from a proxy takes its address from ``X-Forwarded-For`` and its scheme from
``X-Forwarded-Proto``; with ``TRUSTED_PROXIES`` set, only a peer in those networks counts as a
proxy (so a client that reaches the process directly cannot claim an address), and those
networks are skipped in ``X-Forwarded-For`` (a chain of proxies). Empty, the peer is taken to
be the one proxy in front (Heroku's router, whose addresses are not fixed).

Tornado's own ``HTTPServer(xheaders=True, trusted_downstream=…)`` is not used: it applies the
headers on every connection whoever the peer is, prefers ``X-Real-Ip`` to ``X-Forwarded-For``
(Heroku's router passes a client's ``X-Real-Ip`` through untouched) and ``X-Scheme`` to
``X-Forwarded-Proto``, and its ``trusted_downstream`` matches exact address strings, not networks.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tornado.httputil import HTTPServerRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> IPAddress | None:
    """``text`` as an address (an IPv4-mapped IPv6 address as its IPv4 one); None if it is not one."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class ProxyHeaders:
    """The rule above, without I/O: :meth:`client_address` and :meth:`scheme` compute,
    :meth:`apply` rewrites a request's ``remote_ip`` and ``protocol``."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trusted)

    def is_trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.trusted)

    def from_proxy(self, peer: str) -> bool:
        """Whether the TCP peer ``peer`` is a proxy whose headers count."""
        return not self.trusted or self.is_trusted(_address(peer))

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: walking ``X-Forwarded-For`` from the right (the entry the
        nearest proxy added), the first entry that is not a trusted proxy; every entry further
        left was written by that client and counts for nothing. ``peer`` when the header is
        absent or that entry is not an address; the leftmost entry when all are proxies."""
        if not forwarded_for:
            return peer
        entries = [e.strip() for e in forwarded_for.split(",") if e.strip()]
        for entry in reversed(entries):
            addr = _address(entry)
            if addr is None:
                return peer
            if not self.is_trusted(addr):
                return str(addr)
        return str(_address(entries[0])) if entries else peer

    @staticmethod
    def scheme(forwarded_proto: str | None, current: str) -> str:
        """``http`` or ``https`` from the last ``X-Forwarded-Proto`` entry (the nearest proxy's),
        else ``current``."""
        if not forwarded_proto:
            return current
        last = forwarded_proto.split(",")[-1].strip().lower()
        return last if last in ("http", "https") else current

    def apply(self, request: HTTPServerRequest) -> None:
        """Rewrite ``request.remote_ip`` and ``request.protocol`` when it came from a proxy.
        Called once per request, before routing; the request object is not reused."""
        peer = request.remote_ip
        if peer is None or not self.from_proxy(peer):
            return
        request.remote_ip = self.client_address(peer, request.headers.get("X-Forwarded-For"))
        request.protocol = self.scheme(request.headers.get("X-Forwarded-Proto"), request.protocol)
