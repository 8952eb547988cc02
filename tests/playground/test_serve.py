"""``trainlab playground`` on a port that is taken: exit 2 with one line naming the port and the fix."""
from __future__ import annotations

import socket

import pytest

from trainlab.cli import main

pytest.importorskip("uvicorn", reason="uvicorn is not installed")


def test_a_port_in_use_is_one_line_and_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["playground", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no URL printed for a server that never started
    assert err == (f"error: --port must be a port nothing else listens on at 127.0.0.1. Got {port}. Stop the other "
                   f"server, or pick another port, e.g. --port {port + 1}.\n")


def test_a_file_as_runs_dir_is_one_line_before_the_server_starts(tmp_path, capsys):
    afile = tmp_path / "runs"
    afile.write_text("not a folder")  # 'save as run' failed there only when clicked
    assert main(["playground", "--port", "0", "--runs-dir", str(afile)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"error: --runs-dir must be a directory (or one to create) for 'save as run'. Got {str(afile)!r}, "
                   "which is a file. Pass a folder, e.g. --runs-dir runs.\n")
