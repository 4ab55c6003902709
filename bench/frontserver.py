"""The deployed front server on loopback: ``deploy/nginx/nudgelab.conf`` run by Debian's nginx
with a self-signed certificate, for the load bench (``bench/load.py``) and the fault tests
(``tests/production``).

Only what cannot be the same on a test machine is replaced: the listening addresses (loopback
ports), the upstream port, the certificate, the static folder and the log folder. With
``relaxed=True`` the request rates are multiplied by 1000 as well, so that a capacity
measurement measures the server and not the limits. Nothing else of the file changes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPSConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx" / "nudgelab.conf"
SERVER_NAME = "nudgelab.example.org"

MAIN_CONF = """\
{user}daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    access_log off;
    include {tmp}/site.conf;
}}
"""


def nginx_binary() -> str | None:
    """The nginx executable (Debian installs it in /usr/sbin), or None."""
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for :data:`SERVER_NAME`, valid for two days (openssl)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={SERVER_NAME}",
         "-addext", f"subjectAltName=DNS:{SERVER_NAME}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def render(
    upstream_port: int,
    https_port: int,
    http_port: int,
    cert: Path,
    key: Path,
    log_dir: Path,
    *,
    relaxed: bool = False,
) -> str:
    """The site file with loopback ports, the test certificate and local folders."""
    text = SITE.read_text(encoding="utf-8")
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
        "listen 443 ssl default_server;": f"listen 127.0.0.1:{https_port} ssl default_server;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/nudgelab/tls/fullchain.pem": str(cert),
        "/etc/nudgelab/tls/privkey.pem": str(key),
        "/opt/nudgelab/app/static/": f"{ROOT / 'app' / 'static'}/",
        "/var/log/nginx/": f"{log_dir}/",
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{SITE} no longer contains {old!r}: update bench/frontserver.py")
        text = text.replace(old, new)
    text = "\n".join(line for line in text.splitlines() if "listen [::]:" not in line) + "\n"
    if relaxed:
        text = re.sub(r"rate=(\d+)r/([sm])", lambda m: f"rate={int(m[1]) * 1000}r/{m[2]}", text)
        text = text.replace(
            "limit_conn nudgelab_conn_addr 32;", "limit_conn nudgelab_conn_addr 1000;"
        )
    return text


@dataclass
class FrontServer:
    """A running nginx: where it listens and how to trust its certificate."""

    https_port: int
    http_port: int
    cert: Path
    log_dir: Path
    pid: int

    def context(self) -> ssl.SSLContext:
        """A TLS context that trusts only the test certificate."""
        context = ssl.create_default_context(cafile=str(self.cert))
        return context

    def connection(self, timeout: float = 10, source: str | None = None) -> HTTPSConnection:
        """An HTTPS connection to the front server (SNI and Host: :data:`SERVER_NAME`)."""
        return NamedHTTPSConnection(
            "127.0.0.1",
            self.https_port,
            timeout=timeout,
            context=self.context(),
            source_address=(source, 0) if source else None,
        )


class NamedHTTPSConnection(HTTPSConnection):
    """HTTPS to a loopback address, presenting :data:`SERVER_NAME` as SNI and Host."""

    def connect(self) -> None:
        socket_ = socket.create_connection(
            (self.host, self.port), self.timeout, self.source_address
        )
        socket_.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(socket_, server_hostname=SERVER_NAME)  # type: ignore[attr-defined]

    def putrequest(self, method: str, url: str, skip_host: bool = False, **kwargs: bool) -> None:
        super().putrequest(method, url, skip_host=True, **kwargs)
        self.putheader("Host", SERVER_NAME)


@contextmanager
def front_server(
    upstream_port: int, workdir: Path, *, relaxed: bool = False
) -> Iterator[FrontServer]:
    """Run nginx with the deploy configuration in front of ``127.0.0.1:upstream_port``."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (make frontserver installs Debian's nginx)")
    folder = workdir / f"nginx-{upstream_port}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (folder / name).mkdir(exist_ok=True)
    cert, key = self_signed(folder)
    https_port, http_port = free_port(), free_port()
    site = render(upstream_port, https_port, http_port, cert, key, folder / "logs", relaxed=relaxed)
    (folder / "site.conf").write_text(site, encoding="utf-8")
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (folder / "nginx.conf").write_text(MAIN_CONF.format(tmp=folder, user=user), encoding="utf-8")
    with (folder / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = "".join(
                        path.read_text()
                        for path in (folder / "stderr.log", folder / "error.log")
                        if path.exists()
                    )
                    raise RuntimeError(f"nginx did not start:\n{log}") from None
                time.sleep(0.05)
        yield FrontServer(https_port, http_port, cert, folder / "logs", process.pid)
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
