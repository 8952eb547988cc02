"""The playground's interactions in headless Chromium, checked against the server's own numbers: hovering a
neuron, editing a weight or bias, "Download CSV", "discretize output", two tabs training at once, and a
diverging setup. Screenshots go to $TRAINLAB_ARTIFACTS/playground (default: pytest's tmp)."""
from __future__ import annotations

import csv
import io
import math
import re
import time

import pytest
import torch

from tests.playground.conftest import CHROMIUM, nets, open_page, shot
from trainlab.playground.frames import GRID, quantize

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")

ORANGE, GREY, BLUE = (0xF5, 0x93, 0x22), (0xE8, 0xEA, 0xEB), (0x08, 0x77, 0xBD)  # draw.js's colour scale
CELLS = [(r, c) for r in range(2, GRID, 7) for c in range(3, GRID, 7)]  # 14 × 14 sampled cells of the 100 × 100


def colour(q: int) -> tuple[int, ...]:
    """draw.js's LUT: byte q (value q/127.5 − 1) → RGB, orange (−1) → grey (0) → blue (+1)."""
    v = q / 127.5 - 1
    far, t = (ORANGE, -v) if v < 0 else (BLUE, v)
    return tuple(math.floor(g + (f - g) * t + 0.5) for g, f in zip(GREY, far))


def expected_colours(values: torch.Tensor) -> list[tuple[int, ...]]:
    """The colours the page should paint at CELLS for grid values in [−1, 1] (quantised as the server does)."""
    import base64

    q = base64.b64decode(quantize(values))
    return [colour(q[r * GRID + c]) for r, c in CELLS]


def heat_pixels(page, which: str = "a") -> list[tuple[int, ...]]:
    """The big heatmap's RGB at the centre of each sampled cell (300 px canvas: 3 px per cell)."""
    return [tuple(p) for p in page.evaluate("""([which, cells]) => {
        const c = document.querySelector(`.panel[data-which=${which}] canvas.heat`);
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, s = c.width / 100;
        return cells.map(([r, col]) => { const i = (Math.floor(r * s + s / 2) * c.width + Math.floor(col * s + s / 2)) * 4;
                                         return [d[i], d[i + 1], d[i + 2]]; });
    }""", [which, CELLS])]


def heat_colours(page) -> dict[tuple[int, ...], int]:
    """Every distinct RGB of the big heatmap and how many pixels have it."""
    counts = page.evaluate("""() => {
        const c = document.querySelector(".panel canvas.heat"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        const n = {};
        for (let i = 0; i < d.length; i += 4) { const k = d[i] + "," + d[i + 1] + "," + d[i + 2]; n[k] = (n[k] || 0) + 1; }
        return n;
    }""")
    return {tuple(int(v) for v in k.split(",")): n for k, n in counts.items()}


def close_to(got, want, tol: int = 3) -> bool:
    return all(abs(a - b) <= tol for g, w in zip(got, want) for a, b in zip(g, w))


def session_of(app, seed: int, timeout: float = 5.0):
    """The server-side session of the tab opened with ``seed`` (each test uses its own seed)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = [s for s in list(app.state.sessions) if s.state.get("seed") == seed]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no session with seed {seed}")


def frames_drawn(page) -> int:
    return page.evaluate("window.playground.framesDrawn")


def wait_redrawn(page, since: int) -> None:
    page.wait_for_function(f"window.playground.framesDrawn > {since}", timeout=10000)


def test_hovering_a_neuron_shows_its_output_in_the_big_heatmap(server, browser, artifacts):
    app, base = server
    page = open_page(browser, base + "/?seed=31&networkShape=4,3")
    try:
        h = session_of(app, 31).nets["a"]
        with torch.no_grad():
            outs, final = h.trainer.net.activations(h.grid_feats)
        n = GRID * GRID
        boundary = heat_pixels(page)
        assert close_to(boundary, expected_colours(final[:n, 0]))  # at rest: the network's output
        page.hover(".panel .node.hidden >> nth=0")  # layer 1, neuron 1
        page.wait_for_function("document.querySelector('.panel .hover-label').textContent === 'layer 1, neuron 1'")
        first = heat_pixels(page)
        assert close_to(first, expected_colours(outs[0][:n, 0])) and first != boundary
        page.hover(".panel .node.hidden >> nth=5")  # 4 in layer 1, then layer 2: its second neuron
        page.wait_for_function("document.querySelector('.panel .hover-label').textContent === 'layer 2, neuron 2'")
        assert close_to(heat_pixels(page), expected_colours(outs[1][:n, 1]))
        shot(page, artifacts, "hover-neuron")
        page.mouse.move(2, 2)  # off the network: the boundary again
        page.wait_for_function("document.querySelector('.panel .hover-label').textContent === ''")
        assert close_to(heat_pixels(page), boundary, tol=0)
        assert not page.errors, page.errors
    finally:
        page.context.close()


def test_clicking_a_bias_or_weight_edits_it_and_changes_the_output(server, browser):
    app, base = server
    page = open_page(browser, base + "/?seed=32")
    try:
        t = session_of(app, 32).nets["a"].trainer
        loss0 = page.locator(".panel .test-loss").inner_text()
        heat0 = heat_pixels(page)
        page.click(".panel .node.output .bias")
        editor = page.locator("#editor")
        assert editor.is_visible() and editor.locator(".what").inner_text() == "bias of layer 3 neuron 1"
        assert editor.locator(".value").input_value() == "0.1000"  # TF's initial bias
        editor.locator(".value").fill("3")
        editor.locator(".value").press("Enter")
        page.wait_for_function(f"document.querySelector('.panel .test-loss').textContent !== '{loss0}'")
        assert editor.is_hidden() and float(t.net.linears[2].bias[0].detach()) == 3.0
        loss1 = page.locator(".panel .test-loss").inner_text()
        assert float(loss1) == pytest.approx(float(t.history[0, 1]), abs=6e-4)  # the server's loss after the edit
        page.mouse.move(2, 2)
        page.wait_for_function("document.querySelector('.panel .hover-label').textContent === ''")
        heat1 = heat_pixels(page)
        bluer = lambda px: sum(p[2] > p[0] for p in px)  # noqa: E731 - cells on the +1 side
        assert bluer(heat1) > bluer(heat0) and bluer(heat1) == len(CELLS)  # tanh(s + 3): +1 side everywhere

        link = page.locator('.panel path.link[data-layer="2"][data-j="0"]')  # hidden 2.1 → output
        link.click()
        assert editor.locator(".what").inner_text() == "weight 1→1 into layer 3"
        editor.locator(".value").fill("-4")
        editor.locator(".ok").click()
        page.wait_for_function(f"document.querySelector('.panel .test-loss').textContent !== '{loss1}'")
        assert float(t.net.linears[2].weight[0, 0].detach()) == -4.0
        assert float(page.locator(".panel .test-loss").inner_text()) == pytest.approx(float(t.history[0, 1]), abs=6e-4)
        # the link is drawn by its new weight: width 1 + 1.8·|w|, orange for a negative weight
        assert float(link.evaluate("p => parseFloat(p.style.strokeWidth)")) == pytest.approx(8.2)
        assert link.evaluate("p => p.style.stroke") == "rgb(245, 147, 34)"
        assert not page.errors, page.errors
    finally:
        page.context.close()


def _download(page, tmp_path, name: str):
    with page.expect_download() as info:
        page.click("#download")
    d = info.value
    path = tmp_path / name
    d.save_as(path)
    return d.suggested_filename, list(csv.reader(io.StringIO(path.read_text())))


def _rounded(points) -> list[list[float]]:
    rows = torch.cat([points.xy, points.label.float().view(-1, 1)], 1).mul(1000).round().div(1000)
    return rows.tolist()


def test_download_csv_gives_the_current_train_and_test_points(server, browser, tmp_path):
    app, base = server
    page = open_page(browser, base + "/?seed=33&percTrainData=70&noise=10", accept_downloads=True)
    try:
        s = session_of(app, 33)
        name, rows = _download(page, tmp_path, "first.csv")
        assert name == "playground-circle-33.csv"
        assert rows[0] == ["x1", "x2", "label"] and all(len(r) == 3 for r in rows)
        body = [[float(v) for v in r] for r in rows[1:]]
        assert len(body) == 500 == len(s.train_pts) + len(s.test_pts) and len(s.train_pts) == 350
        assert body == _rounded(s.train_pts) + _rounded(s.test_pts)  # training points first, then the test points
        assert {r[2] for r in body} == {-1.0, 1.0}

        page.click("#regenerate")  # new points: the download follows them
        page.wait_for_function("window.playground.state.seed !== 33")
        s = session_of(app, page.evaluate("window.playground.state.seed"))
        _, again = _download(page, tmp_path, "second.csv")
        again_body = [[float(v) for v in r] for r in again[1:]]
        assert again_body != body and again_body == _rounded(s.train_pts) + _rounded(s.test_pts)
    finally:
        page.context.close()


def test_discretize_output_paints_only_the_two_class_colours(server, browser, artifacts):
    app, base = server
    page = open_page(browser, base + "/?seed=34")
    try:
        page.click("#play")
        page.wait_for_function("window.playground.nets.a.epoch > 150", timeout=30000)
        page.click("#play")
        page.wait_for_function("!document.querySelector('#play').classList.contains('playing')")
        smooth = heat_colours(page)
        assert len(smooth) > 50  # a continuous scale
        since = frames_drawn(page)
        page.check(".panel input[data-key=discretize]")
        page.wait_for_function("window.playground.state.discretize === true")
        wait_redrawn(page, since)
        crisp = heat_colours(page)
        assert set(crisp) == {ORANGE, BLUE}, sorted(crisp, key=crisp.get)[-5:]  # both sides of the boundary
        assert "discretize=true" in page.url
        shot(page, artifacts, "discretized")
        since = frames_drawn(page)
        page.uncheck(".panel input[data-key=discretize]")
        page.wait_for_function("window.playground.state.discretize === false")
        wait_redrawn(page, since)
        assert len(heat_colours(page)) > 50
    finally:
        page.context.close()


def test_two_tabs_train_at_once_each_with_its_own_state(server, browser):
    app, base = server
    one = open_page(browser, base + "/?seed=35")
    two = open_page(browser, base + "/?seed=36&networkShape=8&learningRate=0.3&batchSize=5")
    try:
        s1, s2 = session_of(app, 35), session_of(app, 36)
        assert s1 is not s2 and s1.nets["a"] is not s2.nets["a"]
        one.click("#play")
        two.click("#play")
        for page in (one, two):
            page.wait_for_function("window.playground.nets.a.epoch > 30", timeout=30000)
        assert one.evaluate("window.playground.state.networkShape") == [4, 2]
        assert two.evaluate("window.playground.state.networkShape") == [8]
        assert "networkShape=4,2" in one.url and "networkShape=8" in two.url and "learningRate=0.3" in two.url
        assert s1.nets["a"].trainer.settings.batch_size == 10 and s2.nets["a"].trainer.settings.batch_size == 5
        a1, a2 = nets(one)["a"], nets(two)["a"]
        assert a1["testLoss"] != a2["testLoss"]
        e1, e2 = a1["epoch"], a2["epoch"]
        for page, e in ((one, e1), (two, e2)):  # both advance while the other trains
            page.wait_for_function(f"window.playground.nets.a.epoch > {e + 20}", timeout=30000)

        one.context.close()  # closing a tab frees its session and leaves the other one training
        deadline = time.monotonic() + 5
        while s1 in app.state.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s1 not in app.state.sessions
        s1.thread.join(5)
        assert not s1.thread.is_alive()  # its training thread ended
        assert s2 in app.state.sessions and s2.thread.is_alive()
        e = nets(two)["a"]["epoch"]
        two.wait_for_function(f"window.playground.nets.a.epoch > {e + 30}", timeout=30000)
        assert two.evaluate("window.playground.connected") and two.locator("#play.playing").count() == 1
        assert not two.errors, two.errors
    finally:
        for page in (one, two):
            try:
                page.context.close()
            except Exception:  # noqa: BLE001 - already closed
                pass


NUMBER = re.compile(r"^(–|-?\d+\.\d{3}|-?\d\.\d\de[+-]\d+)$")  # what fmt() writes: a number, or – for none


def test_a_diverging_setup_stops_with_a_clear_message_and_no_nan(server, browser, artifacts):
    _, base = server
    page = open_page(browser, base + "/?seed=37&dataset=plane&learningRate=10")
    try:
        page.click("#play")
        stopped = page.locator(".panel .stopped")
        stopped.filter(has_text="diverged").wait_for(timeout=15000)
        text = stopped.inner_text()
        assert text.startswith("stopped: diverged: the training loss became NaN in epoch 1. Lower the learning "
                               "rate (now 10) to go on from epoch 0, or reset"), text
        assert stopped.is_visible()
        page.wait_for_function("!document.querySelector('#play').classList.contains('playing')")
        for sel in (".test-loss", ".train-loss"):
            assert NUMBER.match(page.locator(f".panel {sel}").inner_text()), sel
        assert page.locator("#epoch").inner_text() == "000,000"
        a = nets(page)["a"]
        assert all(isinstance(a[k], (int, float)) and math.isfinite(a[k]) for k in ("trainLoss", "testLoss"))
        numbers = page.locator(".panel .metrics").inner_text() + page.locator("#top").inner_text()
        assert not re.search(r"nan|infinity", numbers, re.I), numbers
        shot(page, artifacts, "diverged")

        page.select_option(".panel select[data-key=learningRate]", "0.03")  # a lower rate goes on from there
        page.wait_for_function("document.querySelector('.panel .stopped').textContent === ''")
        page.click("#play")
        page.wait_for_function("window.playground.nets.a.epoch > 20", timeout=15000)
        assert math.isfinite(nets(page)["a"]["testLoss"]) and NUMBER.match(page.locator(".panel .test-loss").inner_text())
        assert not page.errors, page.errors
    finally:
        page.context.close()
