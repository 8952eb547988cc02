"""The playground server: one page, its static files, and a WebSocket per tab (each tab its own Session).

Safety: only loopback Host headers are served unless ``allow_remote`` (a page on another site cannot
reach this server through DNS rebinding); the WebSocket refuses any Origin other than the page's own
(a foreign site's script cannot drive a session); every message is size-capped, parsed defensively and
handled inside the session's own error boundary, so one bad message ends neither the server nor another tab.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect, WebSocketState

from trainlab.errors import problem
from trainlab.playground.session import Session
from trainlab.playground.state import spec

__all__ = ["create_app", "STATIC", "MAX_MESSAGE", "LOOPBACK", "MAX_SESSIONS"]

log = logging.getLogger("trainlab.playground")
STATIC = Path(__file__).parent / "static"
MAX_MESSAGE = 1_500_000  # characters in one message: a 1 MB CSV upload plus its JSON envelope
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Sessions at once. Each trains in its own thread; past a few per core they all crawl (measured: 50 tabs on 2
# cores got 0-5 frames in 25 s each) and the event loop, starved, notices closed sockets late. 8 tabs on 2 cores
# still train at tens of epochs/s each; a tab over the cap is told so and closed.
MAX_SESSIONS = 8
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def _hostname(host_header: str) -> str:
    return (urlsplit(f"//{host_header}").hostname or "").lower()


def create_app(*, runs_dir: str | Path = "runs", allow_remote: bool = False,
               max_sessions: int = MAX_SESSIONS) -> FastAPI:
    """The FastAPI app. ``runs_dir``: where "save as run" writes; ``allow_remote``: serve non-loopback Hosts;
    ``max_sessions``: tabs served at once (one more is told so and closed)."""
    app = FastAPI(title="trainlab playground", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = set()
    app.state.slots = 0  # sessions admitted and not yet ended (taken before the first await: no race)
    app.state.runs_dir = Path(runs_dir)

    def host_ok(host_header: str | None) -> bool:
        return allow_remote or _hostname(host_header or "") in LOOPBACK

    @app.middleware("http")
    async def loopback_only(request: Request, call_next: Any) -> Any:
        if not host_ok(request.headers.get("host")):
            return PlainTextResponse(problem("Host", "a loopback name (127.0.0.1, localhost, ::1)",
                                             request.headers.get("host"), "Open the URL the server printed"), 400)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico")
    async def favicon() -> PlainTextResponse:
        return PlainTextResponse("", status_code=204)

    @app.get("/api/spec")
    async def api_spec() -> JSONResponse:
        return JSONResponse(spec())

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket) -> None:
        host, origin = ws.headers.get("host"), ws.headers.get("origin")
        same = origin is not None and urlsplit(origin).scheme in ("http", "https") and urlsplit(origin).netloc == host
        if not host_ok(host) or not same:
            log.warning("playground: refused a WebSocket from Origin %r (Host %r)", origin, host)
            await ws.close(code=1008)  # before accept: the handshake is answered 403
            return
        if app.state.slots >= max_sessions:
            await ws.accept()
            await ws.send_text(json.dumps({"type": "message", "level": "error", "text": problem(
                "sessions", f"at most {max_sessions} at once", app.state.slots + 1,
                "Close another playground tab, then reload this one")}))
            await ws.close(code=1013, reason="too many sessions")  # 1013: try again later
            return
        app.state.slots += 1
        try:
            await ws.accept()
            await _serve_session(app, ws)
        finally:
            app.state.slots -= 1

    return app


async def _serve_session(app: FastAPI, ws: WebSocket) -> None:
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue = asyncio.Queue()
    session = Session(lambda text: loop.call_soon_threadsafe(outbox.put_nowait, text), app.state.runs_dir)
    app.state.sessions.add(session)

    async def sender() -> None:
        while True:
            text = await outbox.get()
            await ws.send_text(text)

    send_task = asyncio.create_task(sender())

    def refuse(text: str) -> None:
        outbox.put_nowait(json.dumps({"type": "message", "level": "error", "text": text}))

    try:
        while True:
            event = await ws.receive()
            if event["type"] == "websocket.disconnect":
                break
            text = event.get("text")
            if text is None:
                refuse(problem("message", "JSON text", "binary data", "Reload the page"))
                continue
            if len(text) > MAX_MESSAGE:
                refuse(problem("message", f"at most {MAX_MESSAGE // 1000} kB", f"{len(text) // 1000} kB",
                               "Upload a smaller CSV"))
                continue
            try:
                msg = json.loads(text)
            except ValueError:
                refuse(problem("message", "valid JSON", text[:40], "Reload the page"))
                continue
            if not isinstance(msg, dict):
                refuse(problem("message", "a JSON object with a 'type'", type(msg).__name__, "Reload the page"))
                continue
            if not session.post(msg):
                refuse(problem("messages", f"at most {256} waiting", "more", "Slow down; the last one was dropped"))
    except WebSocketDisconnect:
        pass
    finally:
        session.close()
        app.state.sessions.discard(session)
        send_task.cancel()
        if ws.client_state == WebSocketState.CONNECTED:
            try:
                await ws.close()
            except RuntimeError:
                pass
