"""Serving the kiosk: gunicorn through its Python API, Flask's own server only as a fallback.

Privacy: no log of the server names a client's address. gunicorn's access log (which would name
each client's IP address and the kiosk URL with its token) stays off, and its error log goes to
stderr only, never to a file, through :func:`logger_class`, which removes every IPv4 and IPv6
address from each line (gunicorn itself writes e.g. ``Invalid request from ip=...`` at WARNING).
Werkzeug's request log is limited to errors and scrubbed the same way in :func:`app.create_app`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from flask import Flask


def logger_class() -> type:
    """gunicorn's logger, with every address removed from its lines and no access log at all."""
    from gunicorn.glogging import Logger

    from app.logs import scrub_handlers

    class AddresslessLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            scrub_handlers(self.error_log)
            scrub_handlers(self.access_log)

        def access(self, *_args: Any, **_kwargs: Any) -> None:
            """No access log: it would name each client and each kiosk URL with its token."""

    return AddresslessLogger


#: Seconds an idle keep-alive connection stays open. Longer than the front server's upstream
#: ``keepalive_timeout`` (60 s in deploy/nginx/nudgelab.conf), so that nginx, not gunicorn,
#: closes an idle connection: otherwise a request nginx sends on a connection gunicorn is just
#: closing is lost (a POST is not retried).
KEEPALIVE_SECONDS = 75


def options(
    host: str, port: int, workers: int, threads: int = 4, trusted_proxies: str = ""
) -> dict[str, Any]:
    """gunicorn's settings for the kiosk app (docs/deploy.md explains them).

    ``gthread`` workers: a worker's threads wait for the database, not the CPU, so 2 workers of
    4 threads keep 2 cores busy; idle keep-alive connections wait in the worker's poller, not in
    a thread. ``trusted_proxies`` (comma-separated) is gunicorn's ``forwarded_allow_ips``:
    ``X-Forwarded-Proto`` counts only from those peers ("" trusts none).
    """
    return {
        "bind": f"{host}:{port}",
        "worker_class": "gthread",
        "workers": workers,
        "threads": threads,
        "keepalive": KEEPALIVE_SECONDS,
        "forwarded_allow_ips": trusted_proxies,
        "accesslog": None,
        "logger_class": logger_class(),
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 30,
        "graceful_timeout": 20,
        "proc_name": "nudgelab-kiosk",
    }


def serve(
    factory: Callable[[], Flask],
    host: str,
    port: int,
    workers: int,
    threads: int = 4,
    trusted_proxies: str = "",
) -> None:
    """Run ``factory()`` (called in each worker) on ``host:port`` until interrupted, with
    ``workers`` processes of ``threads`` threads each (settings: :func:`options`)."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # e.g. on Windows: gunicorn does not run there
        _serve_with_flask(factory, host, port)
        return

    class KioskServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options(host, port, workers, threads, trusted_proxies).items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return factory()

    KioskServer().run()


def _serve_with_flask(factory: Callable[[], Flask], host: str, port: int) -> None:
    print("gunicorn is not available here; using Flask's development server", file=sys.stderr)
    factory().run(host=host, port=port, threaded=True, use_reloader=False)
