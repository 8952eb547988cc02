"""The data column in headless Chromium: TF's "Problem type" menu filters the dataset buttons and lives in the URL
(``problem``, as in TF links), and every button shows its dataset's picture drawn from the server's points."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.playground.conftest import CHROMIUM, open_page, shot
from trainlab.playground.state import datasets_of

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")

ORANGE, BLUE = (0xF5, 0x93, 0x22), (0x08, 0x77, 0xBD)  # TF's −1 / +1 colours


def _shown(page) -> list[str]:
    """Names of the dataset buttons on screen, in order."""
    return page.eval_on_selector_all("#datasets .dataset", "bs => bs.filter(b => b.offsetParent !== null)"
                                                           ".map(b => b.dataset.name)")


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def test_problem_type_shows_only_its_datasets_and_goes_into_the_url(server, browser, artifacts):
    _, base = server
    page = open_page(browser, base + "/")
    try:
        classification, regression = datasets_of("classification"), datasets_of("regression")
        assert classification[:4] == ["circle", "xor", "gauss", "spiral"] and regression == ["plane", "multi-gauss"]
        assert page.locator("#data select[data-key=problem]").input_value() == "classification"
        assert _shown(page) == classification and _query(page)["problem"] == "classification"
        page.select_option("#data select[data-key=problem]", "regression")
        page.wait_for_function("window.playground.state.problem === 'regression'")
        assert _shown(page) == regression
        assert page.locator("#datasets .dataset.selected").inner_text() == "plane"
        assert (_query(page)["problem"], _query(page)["dataset"]) == ("regression", "plane")
        assert page.locator(".panel .out-label").inner_text() == "linear"  # a regression network now
        page.click("#datasets .dataset[data-name=multi-gauss]")
        page.wait_for_function("window.playground.state.dataset === 'multi-gauss'")
        assert _query(page)["dataset"] == "multi-gauss" and _shown(page) == regression
        shot(page, artifacts, "problem-regression")
        page.select_option("#data select[data-key=problem]", "classification")
        page.wait_for_function("window.playground.state.problem === 'classification'")
        assert _shown(page) == classification
        assert _query(page)["dataset"] == "circle"  # back to the set it showed before
        page.select_option("#data select[data-key=problem]", "regression")
        page.wait_for_function("window.playground.state.problem === 'regression'")
        assert _query(page)["dataset"] == "multi-gauss"  # and the regression set it showed before
        assert not page.locator("#messages .message").count()  # switching is not a correction
        assert not page.errors, page.errors
    finally:
        page.context.close()


@pytest.mark.parametrize("query, dataset", [
    ("problem=regression&dataset=reg-plane", "plane"),
    ("problem=regression&dataset=circle&regDataset=reg-gauss", "multi-gauss"),  # as TF writes its links
])
def test_tf_regression_link_opens_in_regression(server, browser, query, dataset):
    _, base = server
    page = open_page(browser, f"{base}/?{query}&noise=0&networkShape=4,2")
    try:
        state = page.evaluate("window.playground.state")
        assert (state["problem"], state["dataset"]) == ("regression", dataset)
        assert page.locator("#data select[data-key=problem]").input_value() == "regression"
        assert _shown(page) == datasets_of("regression")
        assert page.locator("#datasets .dataset.selected").inner_text() == dataset
        assert _query(page)["problem"] == "regression" and _query(page)["dataset"] == dataset
        assert not page.locator("#messages .message").count()  # TF's keys open cleanly
    finally:
        page.context.close()


def test_each_thumbnail_is_drawn_from_points_in_tfs_colours(server, browser, artifacts):
    _, base = server
    page = open_page(browser, base + "/")
    try:
        counts = page.evaluate(f"""() => [...document.querySelectorAll('#datasets .dataset')].map(b => {{
            const c = b.querySelector('canvas.thumb');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const is = (i, rgb) => d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2] && d[i + 3] === 255;
            let orange = 0, blue = 0, painted = 0;
            for (let i = 0; i < d.length; i += 4) {{
                if (d[i + 3]) painted++;
                if (is(i, {list(ORANGE)})) orange++;
                if (is(i, {list(BLUE)})) blue++;
            }}
            return {{name: b.dataset.name, label: b.querySelector('span').textContent, orange, blue, painted,
                     size: [c.width, c.height]}};
        }})""")
        by_name = {c["name"]: c for c in counts}
        assert set(by_name) == set(datasets_of("classification") + datasets_of("regression"))
        for name in datasets_of("classification"):
            c = by_name[name]
            assert c["label"] == name and c["size"] == [100, 100]
            # both classes drawn (4×4 squares of ~100 points each), nothing but the two colours
            assert c["orange"] >= 200 and c["blue"] >= 200, c
            assert c["orange"] + c["blue"] == c["painted"], c
        for name in datasets_of("regression"):
            assert by_name[name]["painted"] >= 400, by_name[name]  # values on the colour scale
        page.locator("#data").screenshot(path=str(artifacts / "datasets.png"))
        assert (artifacts / "datasets.png").stat().st_size > 5_000
        assert not page.errors, page.errors
    finally:
        page.context.close()
