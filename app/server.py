"""Serving the kiosk: gunicorn through its Python API, Flask's own server only as a fallback.

Privacy: gunicorn's access log (which would name each client's IP address and the kiosk URL
with its token) stays off, and its error log goes to stderr only, never to a file. Werkzeug's
request log is limited to errors in :func:`app.create_app`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from flask import Flask


def serve(factory: Callable[[], Flask], host: str, port: int, workers: int) -> None:
    """Run ``factory()`` (called in each worker) on ``host:port`` until interrupted."""
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
                "threads": 4,
                "accesslog": None,
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
