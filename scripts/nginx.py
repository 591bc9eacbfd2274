"""nginx in front of the sample site: write its configuration, start it, always stop it.

Tests, benchmarks and notebooks put nginx in front of a server only through this
module, as they start servers only through scripts.launch. nginx is Debian's
/usr/sbin/nginx, started as an ordinary process in the foreground on a free port:

    nginx -p var/nginx/PORT -e var/nginx/PORT/logs/error.log -c var/nginx/PORT/nginx.conf -g 'daemon off;'

Its configuration (from scripts/nginx.conf.template, commented line by line),
pid file, logs and temporary files all live in var/nginx/PORT/, so no system
service or system folder is touched. The server behind it is one or more
backend processes started with scripts.launch, over TCP or a Unix socket:

    with behind_nginx("gunicorn", backends=2, unix=True) as site:
        urllib.request.urlopen(site.url + "/hello")

As a command (what `make demo-nginx BACKEND=wsgi` runs):

    python -m scripts.nginx --backend wsgi [--backends 2] [--unix] [--port 8080]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

from scripts.launch import (HOST, KINDS, REPO, UNIX_SOCKET_KINDS, ServerProcess, ServerStartError,
                            free_port, server_command)

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
NGINX_HOME = REPO / "var" / "nginx"
STATIC_ROOT = REPO / "var" / "static"
INSTALL = "sudo apt-get update && sudo apt-get install -y nginx"



class NginxMissing(RuntimeError):
    """nginx is not installed; the message says how to install it."""


def nginx_program() -> str | None:
    """The path of nginx, also when /usr/sbin is not on PATH (an ordinary user's shell)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin")


def require_nginx() -> str:
    program = nginx_program()
    if program is None:
        raise NginxMissing(f"nginx is not installed: {INSTALL}")
    return program


# --- the configuration -------------------------------------------------------------------------

def user_directive() -> str:
    """Only a master running as root switches its workers' user (to "nobody" by default,
    who could not read var/static); name the user we are, so nothing changes hands."""
    if os.geteuid() != 0:
        return "# (not root: the workers simply run as the user who started nginx)"
    user = pwd.getpwuid(os.geteuid()).pw_name
    return f"user {user};"


def render_config(*, listen: str, upstreams: Sequence[str], prefix: Path,
                  static_root: Path = STATIC_ROOT, access_log: bool = True) -> str:
    """The text of nginx.conf: the template with its @name@ fields filled in.

    `upstreams` are nginx server addresses: "127.0.0.1:8001" or "unix:/path/to.sock".
    """
    if not upstreams:
        raise ValueError("nginx needs at least one upstream server")
    fields = {
        "user_directive": user_directive(),
        "prefix": str(prefix),
        "access_log": f"{prefix}/logs/access.log site" if access_log else "off",
        "backend_count": str(len(upstreams)),
        "upstream_servers": "\n".join(f"        server {address};" for address in upstreams),
        "listen": listen,
        "static_root": str(static_root),
    }
    text = TEMPLATE.read_text()
    text = re.sub(r"@([a-z_]+)@", lambda match: fields.get(match.group(1), match.group(0)), text)
    return text


def prepare_prefix(prefix: Path) -> None:
    """The folders nginx writes into; it creates none of them itself."""
    for folder in ("logs", "temp/client_body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)


_collected = False


def collect_static() -> Path:
    """Django's collectstatic into var/static (STATIC_ROOT), once per process: what nginx serves."""
    global _collected
    if not _collected:
        subprocess.run([sys.executable, "sample_site/manage.py", "collectstatic", "--noinput",
                        "--verbosity", "0"], cwd=REPO, check=True)
        _collected = True
    return STATIC_ROOT


# --- processes -----------------------------------------------------------------------------------

def backend_process(kind: str, *, unix_path: Path | None = None, app: str | None = None,
                    extra: Sequence[str] = (), cpus: set[int] | None = None) -> tuple[ServerProcess, str]:
    """A backend of `kind` (not started) and the address nginx reaches it at."""
    if unix_path is not None:
        with contextlib.suppress(FileNotFoundError):
            unix_path.unlink()  # left by a backend that was killed
        return (ServerProcess(server_command(kind, unix=unix_path, app=app, extra=list(extra)),
                              unix=unix_path, cpus=cpus), f"unix:{unix_path}")
    port = free_port()
    return (ServerProcess(server_command(kind, port=port, app=app, extra=list(extra)), port=port, cpus=cpus),
            f"{HOST}:{port}")


class Nginx(ServerProcess):
    """nginx on a free port in front of `upstreams`, its files in var/nginx/PORT/.

    Started by start() or `with`; writes the configuration first, and `nginx -t`
    checks it so that a mistake is reported with nginx's own words.
    """

    def __init__(self, upstreams: Sequence[str], *, port: int | None = None, prefix: Path | None = None,
                 static_root: Path = STATIC_ROOT, access_log: bool = True, cpus: set[int] | None = None):
        self.program = require_nginx()
        port = port or free_port()
        self.prefix = (prefix or NGINX_HOME / str(port)).resolve()
        self.config_path = self.prefix / "nginx.conf"
        self.upstreams = list(upstreams)
        self.static_root = static_root
        self.access_log = access_log
        # -e: the error log of start-up, before the configuration's error_log is read
        # (otherwise nginx tries the compiled-in /var/log/nginx/error.log first).
        self.options = ["-p", f"{self.prefix}/", "-e", str(self.prefix / "logs" / "error.log"),
                        "-c", str(self.config_path)]
        super().__init__([self.program, *self.options, "-g", "daemon off;"], port=port, cpus=cpus)

    def write_config(self) -> Path:
        prepare_prefix(self.prefix)
        self.config_path.write_text(render_config(
            listen=f"{self.host}:{self.port}", upstreams=self.upstreams, prefix=self.prefix,
            static_root=self.static_root, access_log=self.access_log))
        checked = subprocess.run([self.program, *self.options, "-t", "-q"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise ServerStartError(f"nginx rejected {self.config_path}: {checked.stderr.strip()}")
        return self.config_path

    def start(self) -> "Nginx":
        self.write_config()
        try:
            super().start()
        except ServerStartError as error:
            raise ServerStartError(f"{error}\n{self.error_log()}") from None
        return self

    def error_log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return (self.prefix / "logs" / "error.log").read_text()
        return ""

    def access_lines(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return (self.prefix / "logs" / "access.log").read_text().splitlines()
        return []

    def stop(self, timeout: float = 10.0) -> int | None:
        # SIGQUIT is nginx's graceful shutdown (SIGTERM its fast one): requests in
        # flight finish, and the workers exit before the master.
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        return super().stop(timeout=3)


@dataclasses.dataclass
class Site:
    """nginx and the backends behind it, all running."""

    nginx: Nginx
    backends: list[ServerProcess]
    kind: str

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def host(self) -> str:
        return self.nginx.host

    @property
    def port(self) -> int:
        return self.nginx.port


@contextlib.contextmanager
def behind_nginx(kind: str, *, backends: int = 1, unix: bool = False, app: str | None = None,
                 extra: Sequence[str] = (), port: int | None = None, access_log: bool = True,
                 backend_cpus: set[int] | None = None, nginx_cpus: set[int] | None = None) -> Iterator[Site]:
    """Start `backends` servers of `kind` and nginx in front of them; stop them all at
    the end of the block, nginx first, also when the block raises."""
    require_nginx()
    if kind not in KINDS:
        raise ValueError(f"unknown server kind {kind!r}; choose from {', '.join(KINDS)}")
    if backends < 1:
        raise ValueError("at least one backend is needed")
    collect_static()
    throwaway = port is None
    port = port or free_port()
    prefix = NGINX_HOME / str(port)
    prefix.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if throwaway:
            # A free port is a new folder each time; it goes once everything has stopped.
            # (An explicit port, like the demo's 8080, keeps its folder to be read.)
            stack.callback(shutil.rmtree, prefix, ignore_errors=True)
        started, addresses = [], []
        for number in range(backends):
            unix_path = prefix / f"backend-{number}.sock" if unix else None
            if unix_path is not None:
                # Registered before the backend, so it runs after the backend stopped.
                stack.callback(unix_path.unlink, missing_ok=True)
            process, address = backend_process(kind, unix_path=unix_path, app=app, extra=extra, cpus=backend_cpus)
            stack.enter_context(process)
            started.append(process)
            addresses.append(address)
        nginx = stack.enter_context(Nginx(addresses, port=port, prefix=prefix, access_log=access_log,
                                          cpus=nginx_cpus))
        yield Site(nginx, started, kind)


# --- command line: make demo-nginx ------------------------------------------------------------

def _interrupt(signum, frame):
    # SIGTERM ends the demo like Ctrl-C does, so every `with` stops its process.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.nginx",
        description="Serve the sample site through nginx in front of a server of the toolkit, "
                    "until Ctrl-C. The configuration is written to var/nginx/PORT/nginx.conf.")
    parser.add_argument("--backend", default="wsgi", choices=KINDS, help="the server behind nginx (default wsgi)")
    parser.add_argument("--backends", type=int, default=1,
                        help="how many backend processes nginx balances between (round robin; default 1)")
    parser.add_argument("--unix", action="store_true",
                        help=f"backends on Unix sockets instead of TCP (only {', '.join(UNIX_SOCKET_KINDS)})")
    parser.add_argument("--port", type=int, default=8080, help="the port nginx listens on (default 8080)")
    args = parser.parse_args(argv)
    if args.backends < 1:
        parser.error("--backends must be at least 1")
    if args.unix and args.backend not in UNIX_SOCKET_KINDS:
        parser.error(f"--unix: {args.backend} cannot listen on a Unix socket; "
                     f"choose from {', '.join(UNIX_SOCKET_KINDS)}")
    try:
        with socket.socket() as probe:
            probe.bind((HOST, args.port))
    except OSError:
        parser.error(f"port {args.port} is taken; choose another with --port")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with behind_nginx(args.backend, backends=args.backends, unix=args.unix, port=args.port) as site:
            behind = ", ".join(process.url for process in site.backends)
            print(f"Open {site.url}/ -- nginx in front of {args.backends} x {args.backend} ({behind})")
            print(f"Configuration: {site.nginx.config_path.relative_to(REPO)}; "
                  f"access log: {(site.nginx.prefix / 'logs' / 'access.log').relative_to(REPO)}. "
                  f"Ctrl-C stops nginx and the backends.", flush=True)
            while site.nginx.process.poll() is None:
                time.sleep(0.5)
            print(f"nginx exited with status {site.nginx.process.returncode}:\n{site.nginx.error_log()}",
                  file=sys.stderr)
            return 1
    except NginxMissing as error:
        print(error, file=sys.stderr)
        return 1
    except ServerStartError as error:
        print(f"could not start: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped nginx and the backends")
        return 0


if __name__ == "__main__":
    sys.exit(main())
