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


def serve(
    factory: Callable[[], Flask], host: str, port: int, workers: int, threads: int = 4
) -> None:
    """Run ``factory()`` (called in each worker) on ``host:port`` until interrupted, with
    ``workers`` processes of ``threads`` threads each."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # e.g. on Windows: gunicorn does not run there
        _serve_with_flask(factory, host, port)
        return

    class KioskServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "accesslog": None,
                "logger_class": logger_class(),
                "errorlog": "-",
                "loglevel": "warning",
                "timeout": 30,
                "proc_name": "nudgelab-kiosk",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return factory()

    KioskServer().run()


def _serve_with_flask(factory: Callable[[], Flask], host: str, port: int) -> None:
    print("gunicorn is not available here; using Flask's development server", file=sys.stderr)
    factory().run(host=host, port=port, threaded=True, use_reloader=False)
