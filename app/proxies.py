"""X-Forwarded-For/-Proto/-Host believed only from the proxies that send them.

werkzeug's ProxyFix (PROXY_FIX_HOPS) believes the headers of whoever sends them. In the
redundant layout an app server listens on a LAN address (deploy/gunicorn.conf.py
GUNICORN_BIND) that more hosts than the nginx can reach: a staff PC talking to gunicorn
directly could then name any address, read /metrics from "the monitoring network", write
another address into the audit trail and step around the per-address sign-in limit. So
the headers count only when the peer itself (REMOTE_ADDR) is one of FORWARDED_ALLOW_IPS,
the same setting gunicorn reads for the scheme: addresses separated by commas (gunicorn
takes no networks), ``*`` for any peer (only where nothing but the proxy can reach the app). A peer
on a Unix socket (no address) is the local nginx: the socket's permissions guard it.
"""
from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(value) -> tuple[Network, ...] | None:
    """FORWARDED_ALLOW_IPS as one-address networks; None means any peer (``*``). A wrong
    entry stops the start with its name."""
    text = value if isinstance(value, str) else ",".join(str(v) for v in value or ())
    items = [item.strip() for item in text.split(",") if item.strip()]
    if "*" in items:
        return None
    networks = []
    for item in items:
        try:  # addresses only: gunicorn reads the same variable and takes nothing else
            address = ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(f"FORWARDED_ALLOW_IPS: not an IP address: {item!r} (list the "
                             "proxies' addresses, comma-separated; gunicorn reads it too)") \
                from None
        if address.version == 6 and address.ipv4_mapped:  # as the peer is compared
            address = address.ipv4_mapped
        networks.append(ipaddress.ip_network(address))
    return tuple(networks)


class TrustedProxyFix:
    """ProxyFix for the requests whose peer is a trusted proxy; the others as they came."""

    def __init__(self, app, hops: int, trusted: tuple[Network, ...] | None):
        self.app = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops)
        self.trusted = trusted

    def trusts(self, peer: str | None) -> bool:
        if self.trusted is None or not peer:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def __call__(self, environ, start_response):
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)
