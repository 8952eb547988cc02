"""``trainlab playground``: TF Playground in the browser, trained by trainlab's engine.

``create_app()`` builds the FastAPI app (one page + a WebSocket per tab); ``serve()`` runs it with uvicorn
on 127.0.0.1 and prints the URL. The engine never imports this package.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from pathlib import Path

from trainlab.errors import ConfigError, problem
from trainlab.playground.app import LOOPBACK, create_app

__all__ = ["create_app", "serve", "check_host"]


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    """ConfigError unless ``host`` is loopback or ``allow_remote`` is set."""
    if not _is_loopback(host) and not allow_remote:
        raise ConfigError(problem("--host", "a loopback address (127.0.0.1, localhost, ::1) unless --allow-remote "
                                  "is given", host, "Add --allow-remote to let other machines use it (anyone who can "
                                  "reach the port can then train on this machine)"))


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server, or a ConfigError naming the port and the fix (a port
    in use, or one this user may not open) — before anything is printed or served."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart may reuse a TIME_WAIT port
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(problem("--port", f"a port nothing else listens on at {host}", port,
                                      f"Stop the other server, or pick another port, e.g. --port {port + 1}")) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(problem("--port", "a port this user may open", port,
                                      "Use a port above 1023, e.g. --port 8000")) from None
        raise ConfigError(problem("--host", "an address of this machine", host,
                                  f"Use --host 127.0.0.1 ({exc.strerror})")) from None
    return sock


def serve(host: str = "127.0.0.1", port: int = 8000, allow_remote: bool = False, runs_dir: str | Path = "runs") -> None:
    """Run the playground until Ctrl-C. Binds ``host`` (loopback by default); prints the URL, opens nothing."""
    import uvicorn

    check_host(host, allow_remote)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(problem("--port", "a whole number from 0 to 65535", port, "Use e.g. --port 8000"))
    runs = Path(runs_dir).expanduser()
    if runs.exists() and not runs.is_dir():  # "save as run" would fail there only when a learner clicks it
        raise ConfigError(f"--runs-dir must be a directory (or one to create) for 'save as run'. Got "
                          f"{str(runs_dir)!r}, which is a file. Pass a folder, e.g. --runs-dir runs.")
    sock = bind(host, port)
    if not _is_loopback(host):
        print(f"warning: serving the playground on {host}, reachable from other machines; it has no login.",
              file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"trainlab playground: http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C to stop)", flush=True)
    app = create_app(runs_dir=runs_dir, allow_remote=allow_remote or not _is_loopback(host))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws_max_size=2 * 1024 * 1024)
    uvicorn.Server(config).run(sockets=[sock])
