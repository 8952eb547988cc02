"""A throwaway PostgreSQL cluster on 127.0.0.1 for the shared-storage tests, started from apt's binaries.

``TRAINLAB_TEST_POSTGRES`` (a URL) uses a server someone else started. Otherwise, where PostgreSQL's binaries
exist (apt's ``postgresql``, which ``.ci/run`` installs), one cluster is initialised in a temp directory,
started on a free loopback port for the test session and stopped after it. Without binaries the tests
that need it are skipped, saying why.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    ctl = shutil.which("pg_ctl")
    return Path(ctl).parent if ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    url = os.environ.get("TRAINLAB_TEST_POSTGRES")
    if url:
        yield url
        return
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (apt-get install postgresql) and TRAINLAB_TEST_POSTGRES is not set")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")
    tmp = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
    # initdb refuses to run as root: run the cluster as apt's 'postgres' user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(tmp, "postgres")
    data, port = tmp / "data", _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *map(str, cmd)], check=True, capture_output=True, timeout=120)  # noqa: E731
    run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    run(bindir / "pg_ctl", "-D", data, "-l", tmp / "server.log", "-w", "-t", "60",
        "-o", f"-h 127.0.0.1 -p {port} -k {tmp}", "start")
    try:
        for _ in range(60):
            if subprocess.run([bindir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "trainlab")
        yield f"postgresql://postgres@127.0.0.1:{port}/trainlab"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
