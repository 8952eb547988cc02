"""The playground's limits ("playground"): every URL setting given a value out of range, not a number, or not a
choice (clamped or replaced by a valid value, with one line saying so; refused whole with strict=True), and the
server's edges: a foreign Host or Origin, no Origin, an oversized, binary, non-JSON or non-object message, an
upload over the size or row cap, a weight typed out of range, a tab over the session cap. The server answers each
with one line and keeps serving.
"""
from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from tests.reliability.harness import Case, Skip

# kind → hostile values for it
HOSTILE = {
    "int": {"huge": "1e308", "below": "-1e308", "nan": "nan", "inf": "inf", "text": "abc"},
    "float": {"huge": "1e308", "below": "-5", "nan": "nan", "text": "x"},
    "steps": {"huge": "1e308", "negative": "-5", "nan": "nan", "text": "abc"},
    "seed": {"negative": "-1", "huge": "1e20", "text": "abc"},
    "choice": {"unknown": "evil", "empty": ""},
    "bool": {"text": "maybe"},
    "shape": {"too_wide": "4,999,x", "too_deep": ",".join(["2"] * 12)},
    "names": {"unknown": "evil,evil2"},
}


def _valid(p: Any, v: Any) -> bool:
    from trainlab.playground.state import MAX_LAYERS, MAX_NEURONS

    if p.kind in ("int", "float"):
        return isinstance(v, (int, float)) and math.isfinite(v) and p.lo <= v <= p.hi
    if p.kind == "steps":
        return v in p.options()
    if p.kind == "seed":
        return isinstance(v, int) and 0 <= v <= p.hi or isinstance(v, float) and 0 < v < 1
    if p.kind == "choice":
        return v in p.options()
    if p.kind == "bool":
        return isinstance(v, bool)
    if p.kind == "shape":
        return isinstance(v, list) and len(v) <= MAX_LAYERS and all(1 <= n <= MAX_NEURONS for n in v)
    if p.kind == "names":
        return isinstance(v, list) and all(n in p.options() for n in v)
    raise AssertionError(f"unknown kind {p.kind}")


def _url_case(key: str, label: str, text: str) -> Case:
    def run(_: Path) -> None:
        from trainlab.errors import ConfigError
        from trainlab.playground.state import BY_KEY, parse_state

        p = BY_KEY[key]
        state, notes = parse_state({key: text})
        assert _valid(p, state[key]), f"{key}={text!r} left {state[key]!r}, outside what {key} allows"
        said = [n for n in notes if n.startswith(key)]  # a later cross-field rule may add its own line
        assert said and all("\n" not in n and " must be " in n and "Got" in n for n in said), notes
        try:
            parse_state({key: text}, strict=True)
        except ConfigError:
            pass
        else:
            raise AssertionError(f"strict parsing accepted {key}={text!r}")

    return Case("playground", f"url-{key}-{label}", run, quick=key in ("noise", "networkShape") and label != "text")


def _url_cases() -> list[Case]:
    from trainlab.playground.state import BY_KEY

    return [_url_case(key, label, text) for key, p in BY_KEY.items() for label, text in HOSTILE[p.kind].items()]


# ---- the server --------------------------------------------------------------------------------------------

BASE = "http://127.0.0.1:8000"
PAGE = {"origin": BASE, "host": "127.0.0.1:8000"}  # what the page's own socket sends


@contextlib.contextmanager
def _client(tmp: Path, **app_args: Any) -> Iterator[Any]:
    """A TestClient on a fresh app; on leaving, the sessions' training threads are given 5 s to end (they must)."""
    try:
        from fastapi.testclient import TestClient
    except ImportError as exc:  # pragma: no cover - depends on the test extras
        raise Skip(f"needs fastapi's TestClient (httpx): {exc}") from None
    from trainlab.playground import create_app

    app = create_app(runs_dir=tmp / "runs", **app_args)
    with TestClient(app, base_url=BASE) as client:
        yield client
        end = time.monotonic() + 5
        while _session_threads() and time.monotonic() < end:
            time.sleep(0.02)
        assert not _session_threads(), "a closed tab's training thread still runs"


def _session_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "playground-session" and t.is_alive()]


def _error_line(ws: Any, words: str) -> str:
    """The next error message on the socket; it must be one house-style line containing ``words``."""
    for _ in range(50):
        msg = json.loads(ws.receive_text())
        if msg["type"] == "message" and msg["level"] == "error":
            text = msg["text"]
            assert "\n" not in text and " must be " in text and "Got" in text, text
            assert words in text, f"{words!r} not in {text!r}"
            return text
    raise AssertionError("no error message")


def _still_serving(ws: Any) -> None:
    ws.send_text(json.dumps({"type": "init", "query": "noise=5"}))
    for _ in range(50):
        msg = json.loads(ws.receive_text())
        if msg["type"] == "state":
            assert msg["state"]["noise"] == 5
            return
    raise AssertionError("the session stopped answering")


def _ws_case(name: str, send: Callable[[Any], None], words: str) -> Case:
    def run(d: Path) -> None:
        from tests.reliability.world import case_dir

        with _client(case_dir(f"pg-{name}")) as client:
            with client.websocket_connect("/ws", headers=PAGE) as ws:
                _still_serving(ws)
                send(ws)
                _error_line(ws, words)
                _still_serving(ws)

    return Case("playground", name, run, quick=name == "message-too-big")


def _refused_socket(name: str, headers: dict[str, str]) -> Case:
    def run(d: Path) -> None:
        from starlette.websockets import WebSocketDisconnect

        from tests.reliability.world import case_dir

        with _client(case_dir(f"pg-{name}")) as client:
            try:
                with client.websocket_connect("/ws", headers=headers) as ws:
                    ws.receive_text()
            except WebSocketDisconnect as exc:
                assert exc.code == 1008, exc.code
            else:
                raise AssertionError("a socket from a foreign page was served")
            assert client.get("/api/spec").status_code == 200  # and the server still serves the page

    return Case("playground", name, run, quick=name == "socket-foreign-origin")


def _foreign_host(d: Path) -> None:
    from tests.reliability.world import case_dir

    with _client(case_dir("pg-host")) as client:
        r = client.get("/", headers={"host": "evil.example:8000"})
        assert r.status_code == 400, r.status_code
        assert r.text.count("\n") == 0 and r.text.startswith("Host must be a loopback name") and "Got" in r.text, r.text


def _over_session_cap(d: Path) -> None:
    from tests.reliability.world import case_dir

    with _client(case_dir("pg-cap"), max_sessions=1) as client:
        with client.websocket_connect("/ws", headers=PAGE) as first:
            _still_serving(first)
            with client.websocket_connect("/ws", headers=PAGE) as second:
                text = _error_line(second, "sessions must be at most 1 at once. Got 2")
                assert "Close another playground tab" in text
            _still_serving(first)


def _csv(rows: int, width: int = 1) -> str:
    pad = "0" * width
    return "x1,x2,label\n" + "".join(f"{i % 7}.{pad},{i % 5},{i % 2}\n" for i in range(rows))


def _server_cases() -> list[Case]:
    from trainlab.playground.app import MAX_MESSAGE
    from trainlab.playground.data import MAX_UPLOAD_BYTES, MAX_UPLOAD_ROWS

    return [
        Case("playground", "host-foreign", _foreign_host, quick=True),
        _refused_socket("socket-foreign-origin", {**PAGE, "origin": "http://evil.example"}),
        _refused_socket("socket-no-origin", {"host": PAGE["host"]}),
        _refused_socket("socket-origin-other-port", {**PAGE, "origin": "http://127.0.0.1:9999"}),
        _refused_socket("socket-foreign-host", {"origin": "http://evil.example:8000", "host": "evil.example:8000"}),
        _ws_case("message-too-big", lambda ws: ws.send_text("x" * (MAX_MESSAGE + 1)), "message must be at most"),
        _ws_case("message-binary", lambda ws: ws.send_bytes(b"\x00\x01"), "message must be JSON text"),
        _ws_case("message-not-json", lambda ws: ws.send_text("{nope"), "message must be valid JSON"),
        _ws_case("message-not-an-object", lambda ws: ws.send_text("[1, 2]"), "message must be a JSON object"),
        _ws_case("message-unknown-type", lambda ws: ws.send_text('{"type": "__class__"}'), "must be"),
        _ws_case("upload-too-big", lambda ws: ws.send_text(json.dumps(
            {"type": "upload", "text": _csv(MAX_UPLOAD_BYTES // 8, 40)[: MAX_UPLOAD_BYTES + 1000]})),
            "CSV file must be at most"),
        _ws_case("upload-too-many-rows", lambda ws: ws.send_text(json.dumps(
            {"type": "upload", "text": _csv(MAX_UPLOAD_ROWS + 1)})), f"CSV file must be at most {MAX_UPLOAD_ROWS} rows"),
        _ws_case("upload-not-numbers", lambda ws: ws.send_text(json.dumps(
            {"type": "upload", "text": "x1,x2,label\na,b,c\n" * 20})), "must be"),
        _ws_case("edit-weight-nan", lambda ws: ws.send_text(json.dumps(
            {"type": "edit", "net": "a", "layer": 0, "kind": "w", "i": 0, "j": 0, "value": "nan"})),
            "weight must be a finite number"),
        Case("playground", "sessions-over-the-cap", _over_session_cap),
    ]


def cases() -> list[Case]:
    return [*_url_cases(), *_server_cases()]
