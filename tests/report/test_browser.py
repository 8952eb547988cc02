"""The HTML report and the comparison page in headless Chromium: sections visible, images decoded, no network."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report.test_html import DIAGNOSIS, fake_mnist_run
from tests.report.test_plots import assert_png, toy_cfg
from trainlab.report import compare_runs, write_report
from trainlab.train.run import train

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
REPORT_SECTIONS = ["verdict", "curves", "confusion", "examples", "layers", "config", "timing", "environment"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM),
                               args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def open_page(browser, path: Path):
    """Open ``path`` via file:// and return (page, every URL it requested)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, requests


def natural_widths(page) -> list[int]:
    return page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")


def test_report_sections_are_visible_and_images_render(browser, fake_mnist, tmp_path):
    result = fake_mnist_run(fake_mnist, tmp_path)
    (result.run_dir / "diagnosis.json").write_text(json.dumps(DIAGNOSIS))
    page, requests = open_page(browser, write_report(result.run_dir))
    try:
        for sid in REPORT_SECTIONS:
            section = page.locator(f"section#{sid}")
            assert section.is_visible(), sid
            box = section.bounding_box()
            assert box["width"] > 600 and box["height"] > 60, (sid, box)
        widths = natural_widths(page)
        assert len(widths) == 4 and all(w > 0 for w in widths), widths  # curves, examples, the two layer pictures
        # the confusion matrix is a table: 10 x 10 shares with each count on hover, a bar per class
        cells = page.locator("#confusion table.cm tbody td[title]")
        assert cells.count() == 100 and page.locator("#confusion .bar").count() == 10
        assert page.locator("#confusion table.cm").bounding_box()["width"] > 500
        first = cells.first.get_attribute("title")
        assert first.startswith("true T-shirt/top, predicted T-shirt/top: ") and " of " in first
        # images fit the page: nothing wider than the viewport forces sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= 1200
        assert page.locator(".finding.error").is_visible()
        assert page.locator(".finding.error .sev").inner_text().lower() == "error"
        assert "<script>alert(1)</script>" in page.locator(".finding.error").inner_text()  # shown as text
        assert page.locator("#config tr.changed", has_text="model.hidden").is_visible()
        page.click("nav a[href='#environment']")
        assert page.locator("#environment").is_visible()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert_png(shot, min_wh=(1000, 2000), max_wh=(1300, 20000))
        assert all(u.startswith(("file://", "data:")) for u in requests), requests
    finally:
        page.close()


def test_comparison_page_renders(browser, tmp_path):
    dirs = [train(toy_cfg(tmp_path, name=f"lr-{lr}", epochs=2, **{"optimizer.lr": lr}), verbose=False).run_dir
            for lr in (0.1, 0.01)]
    page, requests = open_page(browser, compare_runs(dirs, tmp_path / "cmp"))
    try:
        assert page.locator("section#curves").is_visible() and page.locator("section#table").is_visible()
        assert natural_widths(page)[0] > 0
        assert page.locator("#table tr").count() == 4  # the test-metrics group label, the column names, 2 runs
        assert page.locator("#table th.test", has_text="for the final report only").is_visible()
        assert page.locator("#table th", has_text="optimizer.lr").is_visible()
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
        assert all(u.startswith(("file://", "data:")) for u in requests), requests
    finally:
        page.close()
