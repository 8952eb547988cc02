"""Every mode of the page under its own Content-Security-Policy (not bypassed): zero console errors, the
confusion table's cells coloured, and icon buttons with names (the play button is "Run" / "Pause")."""
from __future__ import annotations

import time

import pytest

from tests.playground.conftest import CHROMIUM

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")

TF_LINK = ("#activation=tanh&batchSize=10&dataset=circle&regDataset=reg-plane&learningRate=0.03"
           "&regularizationRate=0&noise=0&networkShape=4,2&seed=0.41236&showTestData=false&discretize=false"
           "&percTrainData=50&x=true&y=true&xTimesY=false&xSquared=false&ySquared=false&cosX=false&sinX=false"
           "&cosY=false&sinY=false&collectStats=false&problem=classification&initZero=false&hideText=false")

MODES = {  # name → (the URL's tail, the confusion table's classes; 0: regression, no table)
    "classification": ("/", 2),
    "regression": ("/?dataset=plane&networkShape=3", 0),
    "multi-class": ("/?dataset=spiral&classes=3&networkShape=8,8&activation=relu&learningRate=0.1", 3),
    "side by side": ("/?compare=true&b.networkShape=2", 2),
    "csv": ("/", 2),
    "0 hidden layers": ("/?networkShape=", 2),
    "tf link with a float seed": ("/" + TF_LINK, 2),
}


def poll(page, expression: str, timeout: float = 20.0):
    """Evaluate ``expression`` until it is truthy. (wait_for_function evaluates strings with eval, which the
    page's CSP forbids; page.evaluate goes through the DevTools protocol, which the CSP does not govern.)"""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}")


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_runs_under_the_csp_without_a_console_error(server, browser, tmp_path, mode):
    _, base = server
    tail, classes = MODES[mode]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # no bypass_csp
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + tail)
        poll(page, "window.playground && window.playground.framesDrawn > 0")
        if mode == "csv":
            csv = tmp_path / "points.csv"
            csv.write_text("x1,x2,label\n" + "\n".join(f"{(i % 11) - 5},{(i % 7) - 3},{1 if i % 11 > 5 else -1}"
                                                        for i in range(80)) + "\n")
            page.set_input_files("#upload", str(csv))
            poll(page, "window.playground.state.dataset === 'upload'")
        if mode == "0 hidden layers":
            assert page.evaluate("window.playground.state.networkShape.length") == 0
            assert page.locator(".panel .n-layers").first.inner_text() == "0 hidden layers"
        if mode.startswith("tf link"):
            assert page.evaluate("window.playground.state.seed") == 0.41236
            assert "seed=0.41236" in page.url and "#" not in page.url  # rewritten as this page's query
        run = page.get_by_role("button", name="Run")
        run.click()
        poll(page, "window.playground.nets.a && window.playground.nets.a.epoch >= 30")
        page.get_by_role("button", name="Pause").click()
        poll(page, "!document.querySelector('#play').classList.contains('playing')")
        for name in ("Reset", "Step", "Add a hidden layer", "Remove a hidden layer"):
            assert page.get_by_role("button", name=name).count() >= 1, name
        if classes:
            poll(page, f"document.querySelectorAll('.panel table.confusion td').length >= {classes * classes}")
            cells = page.evaluate("[...document.querySelectorAll('.panel table.confusion td')]"
                                  ".map(td => getComputedStyle(td).backgroundColor)")
            heads = page.evaluate("[...document.querySelectorAll('.panel table.confusion th.class')]"
                                  ".map(th => getComputedStyle(th).color)")
            # right answers shaded blue, wrong ones orange; class labels in the class colours (orange, blue, ...)
            assert all(c.startswith("rgba(8, 119, 189") or c.startswith("rgba(245, 147, 34") for c in cells), cells
            assert heads[:2] == ["rgb(245, 147, 34)", "rgb(8, 119, 189)"], heads
        else:
            assert page.locator(".panel table.confusion td").count() == 0
        assert errors == [], errors[:5]
    finally:
        context.close()
