"""Shared by the playground's tests: a Session without a server and what it sends; for the browser tests a
server on 127.0.0.1 (one per test module), headless Chromium, pages and screenshots."""
from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from trainlab.playground.session import Session

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def one_torch_thread():
    """Train in this thread as the session threads do: tiny nets run ~5× slower on 2 threads here."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class Collect:
    """The session's ``send``: every message, parsed (strict JSON: NaN would not parse), in order."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.log: list[dict] = []

    def frame(self, epoch: int) -> dict:
        """The first frame showing network A at ``epoch`` or later."""
        while (f := self.until("frame"))["nets"]["a"]["epoch"] < epoch:
            pass
        return f

    def __call__(self, text: str) -> None:
        msg = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in a message: {text[:200]}"))
        self.log.append(msg)
        self.q.put(msg)

    def verdict(self, session, timeout: float = 10.0) -> dict:
        """Ask for frames until one carries a live verdict for network A; return that verdict."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            session.post({"type": "frame", "force": True})
            v = self.until("frame")["nets"]["a"].get("verdict")
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("no verdict")

    def until(self, kind: str, timeout: float = 10.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.q.get(timeout=max(end - time.monotonic(), 0.01))
            if msg["type"] == kind:
                return msg
        raise AssertionError(f"no {kind} message")


@pytest.fixture
def session(tmp_path):
    out = Collect()
    s = Session(out, tmp_path / "runs")
    s.out = out
    yield s
    s.close()
    s.thread.join(5)


# --- browser tests ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    from trainlab.playground import create_app

    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    path = Path(os.environ.get("TRAINLAB_ARTIFACTS") or tmp_path_factory.mktemp("artifacts")) / "playground"
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser, url: str, width: int = 1400, height: int = 1000, **context):
    """A new tab (its own context) on ``url``, once it has drawn a frame; ``page.errors`` collects page errors."""
    # bypass_csp: the page's CSP forbids eval, which Playwright's wait_for_function uses to poll
    page = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True, **context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.playground && window.playground.framesDrawn > 0", timeout=15000)
    page.errors = errors
    return page


def nets(page) -> dict:
    return page.evaluate("window.playground.nets")


def shot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
    return path
