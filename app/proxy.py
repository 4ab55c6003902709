"""Behind a front server: trust ``X-Forwarded-*`` only from the front server's own address.

A front server (nginx, see ``deploy/``) terminates TLS and connects to the kiosk app from its own
address, naming the client and the scheme in ``X-Forwarded-For`` and ``X-Forwarded-Proto``.
:class:`TrustedProxy` applies those headers (through Werkzeug's ``ProxyFix``, one proxy deep) only
to requests whose peer is one of ``NUDGELAB_TRUSTED_PROXIES``; from any other peer they are
removed, so a client that reaches the app directly cannot pretend to be another client or to
have come over HTTPS. The client's address is used in memory only (per-address rate limits);
it is never stored or logged (docs/ethics.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The headers a front server sets; dropped when the peer is not a trusted proxy.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_FORWARDED",
)

#: What ``nudgelab serve --behind-proxy`` trusts when no address is configured: a front server
#: on the same machine.
LOCAL_PROXY = "127.0.0.1,::1"


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/24"`` as networks; raises ValueError for anything else."""
    networks = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or network") from None
    if not networks:
        raise ValueError("name at least one address, e.g. 127.0.0.1")
    return tuple(networks)


def as_networks(value: str | Iterable[Network] | None) -> tuple[Network, ...]:
    """The ``TRUSTED_PROXIES`` setting (parsed, a string from an override, or None)."""
    if not value:
        return ()
    return parse_networks(value) if isinstance(value, str) else tuple(value)


def forwarded_allow_ips(value: str | Iterable[Network] | None) -> str:
    """The same addresses as gunicorn's ``forwarded_allow_ips`` ("" trusts none)."""
    return ",".join(str(network) for network in as_networks(value))


class TrustedProxy:
    """WSGI middleware: ``ProxyFix`` for requests from ``proxies``, forwarded headers removed
    from all others."""

    def __init__(self, wsgi_app: Callable[..., Any], proxies: Iterable[Network]) -> None:
        self.proxies = tuple(proxies)
        self.direct = wsgi_app
        self.fixed = ProxyFix(wsgi_app, x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0)

    def trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for header in FORWARDED_HEADERS:
            environ.pop(header, None)
        return self.direct(environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app when ``TRUSTED_PROXIES`` names its front server (else leave it alone)."""
    proxies = as_networks(app.config.get("TRUSTED_PROXIES"))
    if proxies:
        app.wsgi_app = TrustedProxy(app.wsgi_app, proxies)  # type: ignore[method-assign]
