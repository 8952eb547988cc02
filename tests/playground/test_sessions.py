"""Many tabs at once: sessions past the cap are told so and closed; a closed socket ends its session's training."""
from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest

from trainlab.playground.app import MAX_SESSIONS

pytest.importorskip("uvicorn", reason="uvicorn is not installed")
ws_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")
ConnectionClosed = pytest.importorskip("websockets.exceptions").ConnectionClosed


def _training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "playground-session" and t.is_alive()]


def _first_message(ws, kind: str) -> dict:
    while True:
        msg = json.loads(ws.recv(timeout=30))
        if msg["type"] == kind:
            return msg


def test_twenty_sessions_opened_and_closed_leave_no_training_thread(server):
    app, base = server
    url = base.replace("http://", "ws://") + "/ws"
    admitted, refused = [], []
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(ws_client.connect(url, origin=base, open_timeout=30)) for _ in range(20)]
        for ws in socks:
            try:
                ws.send(json.dumps({"type": "init", "query": "networkShape=8,8&batchSize=1"}))
                ws.send(json.dumps({"type": "play"}))
            except ConnectionClosed:
                pass  # refused: the server has closed it
        for ws in socks:
            msg = json.loads(ws.recv(timeout=30))
            (admitted if msg["type"] == "state" else refused).append(msg)
        assert len(admitted) == MAX_SESSIONS and len(refused) == 20 - MAX_SESSIONS
        assert refused[0]["text"] == (f"sessions must be at most {MAX_SESSIONS} at once. Got {MAX_SESSIONS + 1}. "
                                      "Close another playground tab, then reload this one.")
        assert len(_training_threads()) == MAX_SESSIONS  # training, all of them
    # every session's thread ends soon after its socket closes: after the epoch it is in, which on a loaded 2-core
    # machine with 8 sessions training took more than 2 s (polled for at most 15 s; normally well under 1 s)
    end = time.monotonic() + 15.0
    while _training_threads() and time.monotonic() < end:
        time.sleep(0.05)
    assert _training_threads() == []
    assert app.state.sessions == set() and app.state.slots == 0


def test_a_session_whose_server_loop_is_gone_ends_quietly(tmp_path, monkeypatch):
    """A session thread still training when the server's event loop closes: its next message cannot be sent, so it
    ends, without an exception escaping the thread (it used to die with 'Event loop is closed' twice over)."""
    from trainlab.playground.session import Session

    escaped: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))

    def gone(text: str) -> None:
        raise RuntimeError("Event loop is closed")

    session = Session(gone, tmp_path)
    session.post({"type": "init", "query": "networkShape=4"})
    session.thread.join(30)
    assert not session.thread.is_alive() and session.closed and escaped == []
