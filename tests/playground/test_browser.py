"""The playground in headless Chromium: load, play, learn, restore a shared URL, side by side, CSV upload,
refused Origins, freed sessions; a screenshot of each mode goes to $TRAINLAB_ARTIFACTS (default: tmp)."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests.playground.conftest import CHROMIUM, nets, open_page, shot

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed")
websockets = pytest.importorskip("websockets", reason="websockets is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")


def test_load_play_and_learn_the_default_setup(server, browser, artifacts):
    app, base = server
    page = open_page(browser, base + "/")
    try:
        assert page.locator("#datasets .dataset.selected").inner_text() == "circle"
        assert page.locator(".panel .node.hidden").count() == 6  # [4, 2]
        assert nets(page)["a"]["epoch"] == 0
        page.click("#play")
        page.wait_for_function("window.playground.nets.a.epoch >= 20", timeout=15000)
        first = page.locator("#epoch").inner_text()
        page.wait_for_function("window.playground.nets.a.testLoss < 0.05", timeout=60000)
        assert page.locator("#epoch").inner_text() != first  # the counter on the page rises
        loss = float(page.locator(".panel .test-loss").first.inner_text())
        assert loss < 0.06
        page.click("#play")  # pause
        page.wait_for_timeout(300)
        paused = nets(page)["a"]["epoch"]
        page.wait_for_timeout(400)
        assert nets(page)["a"]["epoch"] == paused
        page.click("#step")
        page.wait_for_function(f"window.playground.nets.a.epoch === {paused + 1}", timeout=5000)
        assert page.locator(".panel .verdict").inner_text().strip() != ""
        shot(page, artifacts, "classification")
        page.click("#reset")
        page.wait_for_function("window.playground.nets.a.epoch === 0", timeout=5000)
        assert not page.errors, page.errors
    finally:
        page.context.close()
    deadline = time.monotonic() + 5
    while app.state.sessions and time.monotonic() < deadline:  # closing the tab frees its session
        time.sleep(0.05)
    assert not app.state.sessions


def test_shared_url_restores_the_same_state(server, browser, artifacts):
    _, base = server
    page = open_page(browser, base + "/?seed=7&noise=10")
    try:
        page.click("#datasets .dataset[data-name=xor]")
        page.wait_for_function("window.playground.state.dataset === 'xor'")
        page.click(".panel .add-layer")
        page.wait_for_function("window.playground.state.networkShape.length === 3")
        page.select_option(".panel select[data-key=learningRate]", "0.1")
        page.wait_for_function("window.playground.state.learningRate === 0.1")
        page.locator(".panel .node.input[data-feature=xTimesY]").click()
        page.wait_for_function("window.playground.state.xTimesY === true")
        url, state = page.url, page.evaluate("window.playground.state")
        q = urlsplit(url).query
        assert "dataset=xor" in q and "networkShape=4,2,2" in q and "seed=7" in q and "xTimesY=true" in q
        page.wait_for_timeout(300)
        w0 = page.evaluate("window.playground.nets.a.testLoss")
    finally:
        page.context.close()
    again = open_page(browser, url)
    try:
        assert again.evaluate("window.playground.state") == state
        assert again.evaluate("window.playground.nets.a.testLoss") == w0  # same data, same initial weights
        assert again.locator(".panel select[data-key=learningRate]").input_value() == "0.1"
    finally:
        again.context.close()


def test_hand_edited_url_is_clamped_with_a_visible_message(server, browser):
    _, base = server
    page = open_page(browser, base + "/?noise=80&batchSize=nan&networkShape=4,99")
    try:
        messages = page.locator("#messages .message")
        assert messages.filter(has_text="noise must be a whole number from 0 to 50. Got '80'. Using 50.").is_visible()
        assert messages.filter(has_text="batchSize must be").is_visible()
        state = page.evaluate("window.playground.state")
        assert state["noise"] == 50 and state["batchSize"] == 10 and state["networkShape"] == [4, 32]
        assert "noise=50" in page.url
    finally:
        page.context.close()


def test_side_by_side_trains_both(server, browser, artifacts):
    _, base = server
    page = open_page(browser, base + "/?networkShape=1")
    try:
        page.check("#top input[data-key=compare]")
        page.wait_for_selector(".panel[data-which=b]")
        b = page.locator(".panel[data-which=b]")
        b.locator(".add-layer").click()
        page.wait_for_function("window.playground.state['b.networkShape'].length === 2")
        assert page.evaluate("window.playground.state.networkShape") == [1]
        page.click("#play")
        page.wait_for_function("window.playground.nets.a && window.playground.nets.b && "
                               "window.playground.nets.a.epoch > 30 && window.playground.nets.b.epoch > 30",
                               timeout=20000)
        n = nets(page)
        assert n["a"]["testLoss"] != n["b"]["testLoss"]
        assert "compare=true" in page.url and "b.networkShape=1,2" in page.url
        page.click("#play")
        # 1400 px wide: A and B are two columns, side by side, and both boundaries are in view without scrolling
        a_box, b_box = (page.locator(f".panel[data-which={w}]").bounding_box() for w in "ab")
        assert b_box["x"] >= a_box["x"] + a_box["width"] and abs(b_box["y"] - a_box["y"]) < 1
        for w in "ab":
            heat = page.locator(f".panel[data-which={w}] canvas.heat").bounding_box()
            assert heat["x"] + heat["width"] <= 1400 and heat["y"] + heat["height"] <= 1000
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400  # no sideways scrolling
        shot(page, artifacts, "side-by-side")
        page.set_viewport_size({"width": 1100, "height": 1000})  # narrower: stacked, B below A
        page.wait_for_function("document.querySelector('.panel[data-which=b]').getBoundingClientRect().top > "
                               "document.querySelector('.panel[data-which=a]').getBoundingClientRect().bottom")
        assert not page.errors, page.errors
    finally:
        page.context.close()


def test_other_modes_render(server, browser, artifacts):
    _, base = server
    for name, query in [("multiclass", "dataset=spiral&classes=3&networkShape=8,8&activation=relu&learningRate=0.1"
                                       "&xSquared=true&ySquared=true&sinX=true&sinY=true"),
                        ("regression", "dataset=multi-gauss&networkShape=6,4&showTestData=true")]:
        page = open_page(browser, f"{base}/?{query}")
        try:
            page.click("#play")
            page.wait_for_function("window.playground.nets.a.epoch > 40", timeout=20000)
            page.click("#play")
            if name == "multiclass":
                assert page.locator(".panel table.confusion tr").count() == 4  # header + 3 classes
            shot(page, artifacts, name)
            assert not page.errors, page.errors
        finally:
            page.context.close()


def test_csv_upload_good_and_bad(server, browser, tmp_path):
    _, base = server
    good = tmp_path / "good.csv"
    good.write_text("x1,x2,label\n" + "\n".join(f"{(i % 11) - 5},{(i % 7) - 3},{1 if i % 11 > 5 else -1}"
                                                for i in range(80)) + "\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,label\n1,2,1\n3,oops,1\n")
    page = open_page(browser, base + "/")
    try:
        page.set_input_files("#upload", str(good))
        page.wait_for_function("window.playground.state.dataset === 'upload'")
        # the server sends the new state, then the message, in two frames: wait for the message as for the error
        info = page.locator("#messages .message.info", has_text="Uploaded 80 points (2 classes).")
        info.wait_for()
        assert info.is_visible()
        page.set_input_files("#upload", str(bad))
        err = page.locator("#messages .message.error", has_text="CSV row 2 column 2 must be a finite number. Got 'oops'")
        err.wait_for()
        assert page.evaluate("window.playground.state.dataset") == "upload"  # the good data stays
    finally:
        page.context.close()


def test_foreign_origin_and_host_are_refused(server):
    _, base = server
    port = urlsplit(base).port

    from websockets.sync.client import connect  # sync: Playwright's loop already runs in this thread

    def attempt(origin):
        with connect(f"ws://127.0.0.1:{port}/ws", origin=origin, open_timeout=5) as ws:
            ws.send('{"type": "init", "query": ""}')
            return ws.recv(timeout=5)[:20]

    with pytest.raises(websockets.exceptions.InvalidStatus, match="403"):
        attempt("http://evil.example")
    with pytest.raises(websockets.exceptions.InvalidStatus, match="403"):
        attempt(f"http://localhost.evil.example:{port}")
    with pytest.raises(websockets.exceptions.InvalidStatus, match="403"):
        attempt(None)  # no Origin at all
    assert '"type":"state"' in attempt(base)
    import httpx
    r = httpx.get(base + "/", headers={"Host": "rebind.example:80"})
    assert r.status_code == 400 and "Host must be a loopback name" in r.text
    ok = httpx.get(base + "/")
    assert ok.status_code == 200 and "script-src 'self'" in ok.headers["content-security-policy"]
