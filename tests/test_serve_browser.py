"""The playground in a real browser: Playwright driving the system's Chromium (no download).

The server runs in a thread on a free loopback port; each test opens the page, acts as
a person would (keyboard on a slider, a click on the language, on each example), and
fails on any console error or uncaught exception. Screenshots at 1440 and 375 pixels
go to ``$CROSSENT_SCREENSHOTS`` (default: pytest's temporary folder), outside git.
Chromium comes from the system (``executable_path``), as in the other HTML tests.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright")

import crossent  # noqa: E402
from _browser import FLAGS, require_chromium  # noqa: E402
from crossent.explain import examples  # noqa: E402

STRINGS = json.loads((resources.files("crossent.serve") / "static" / "strings.json").read_text(
    encoding="utf-8"))
START = "?loss=cross_entropy&x=1.4,3.2,5;0.4,0.3,0.7&tmode=index&t=2,1&sel=0,1"


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from crossent.serve import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                             log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the playground's server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        # the project's headless flags; Playwright adds its own headless switch
        instance = playwright.chromium.launch(
            executable_path=executable, args=[flag for flag in FLAGS if flag != "--headless"])
        yield instance
        instance.close()


class Page:
    """A page of the playground that records every console error and uncaught exception."""

    def __init__(self, browser, server, width=1280, height=900):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.server = server
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in (
            "error", "assert") else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, query=""):
        self.page.goto(self.server + query)
        self.settle()

    def wait(self, expression: str, timeout: float = 15.0) -> None:
        """Wait until ``expression`` is true in the page (polled from here: the page's
        Content-Security-Policy forbids the eval that Playwright's wait_for_function uses)."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(f"() => Boolean({expression})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never reached: {expression}")
            time.sleep(0.03)

    def settle(self):
        """Wait until the page has answered the latest change (no request in flight)."""
        self.wait("document.getElementById('view-playground').hidden || "
                  "document.body.getAttribute('data-busy') === '0'")

    def loss(self) -> tuple[str, float]:
        shown = self.page.locator("#loss-value")
        return shown.inner_text(), json.loads(shown.get_attribute("data-value"))


@pytest.fixture
def page(browser, server):
    opened = Page(browser, server)
    yield opened
    opened.page.close()
    assert opened.errors == [], opened.errors


def test_moving_a_logit_shows_crossents_loss_of_the_new_logits(page):
    page.open(START)
    text, value = page.loss()
    target = np.array([2, 1])
    assert value == pytest.approx(float(crossent.cross_entropy(
        np.array([[1.4, 3.2, 5.0], [0.4, 0.3, 0.7]]), target)), rel=1e-14)
    slider = page.page.get_by_label("z[0, 1]", exact=True)
    slider.focus()
    for _ in range(5):  # the keyboard moves the slider by its step, 0.1
        slider.press("ArrowRight")
    page.wait("document.querySelector('#loss-value').textContent !== "
                                f"{json.dumps(text)}")
    page.settle()
    expected = float(crossent.cross_entropy(np.array([[1.4, 3.7, 5.0], [0.4, 0.3, 0.7]]), target))
    text, value = page.loss()
    assert value == pytest.approx(expected, rel=1e-14)
    assert float(text) == pytest.approx(expected, rel=5e-8)  # shown with 8 significant digits
    assert page.page.locator("#x-0-1").input_value() == "3.7"
    assert "x=1.4%2C3.7%2C5" in page.page.url or "x=1.4,3.7,5" in page.page.url
    # the link reproduces the view
    again = Page(page.page.context.browser, page.server)
    again.open("?" + page.page.url.split("?", 1)[1])
    assert again.loss()[1] == pytest.approx(expected, rel=1e-14)
    again.page.close()
    assert again.errors == []


def test_switching_to_chinese_and_back(page):
    page.open(START)
    page.page.get_by_role("button", name="中文").click()
    page.wait("document.documentElement.lang === 'zh-CN'")
    page.settle()
    assert page.page.locator("h1").inner_text() == STRINGS["zh"]["title"]
    assert page.page.locator("#h-trace").inner_text() == STRINGS["zh"]["trace.heading"]
    page.wait("document.querySelector('#trace .meaning') && "
                                "document.querySelector('#trace .meaning').textContent"
                                ".includes('softmax 把每一行 logits')")
    assert "lang=zh" in page.page.url
    page.page.get_by_role("button", name="English").click()
    page.wait("document.documentElement.lang === 'en'")
    page.settle()
    assert page.page.locator("h1").inner_text() == STRINGS["en"]["title"]
    page.wait("document.querySelector('#trace .meaning').textContent"
                                ".startsWith('Softmax turns each row')")


def test_every_seed_example_shows_the_seeds_number_beside_crossents(page):
    page.open("?view=examples&lang=en")
    for name in examples.names():
        page.page.locator(f'button.example-button[data-name="{name}"]').click()
        page.page.wait_for_selector(f'#example[data-example="{name}"]')
        checks = examples.get(name).checks
        seeds = page.page.locator("#example .seed-value").all_inner_texts()
        assert seeds == [check.seed for check in checks], name
        statuses = page.page.locator("#example .check-row .status").all_inner_texts()
        assert statuses == [STRINGS["en"]["checks." + (
            "matches" if c.matches else "differs" if c.erratum else "DIFFERS")] for c in checks]
    # an example opens in the playground with its inputs
    page.page.locator('button.example-button[data-name="seed001-network"]').click()
    page.page.wait_for_selector('#example[data-example="seed001-network"]')
    page.page.get_by_role("button", name="open in the playground").click()
    page.settle()
    assert page.loss()[1] == pytest.approx(float(examples.get("seed001-network").value), rel=1e-14)


def test_every_curve_is_drawn(page):
    from crossent import plots

    page.open("?view=curves")
    for name, spec in plots.PLOTS.items():
        page.page.locator(f'button.plot-button[data-name="{name}"]').click()
        page.wait(f"document.querySelectorAll('#plot path.series').length === "
                                    f"{spec.lines}")


def test_every_control_has_a_label_and_losses_switch_cleanly(page):
    page.open(START)
    for loss in ("nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                 "sigmoid_focal_loss", "softmax_focal_loss", "kl_divergence", "cross_entropy"):
        page.page.select_option("#loss", loss)
        page.settle()
        assert page.page.locator("#error").is_hidden(), page.page.locator("#error").inner_text()
        unlabelled = page.page.evaluate("""() => [...document.querySelectorAll(
            'input, select, button')].filter((node) => node.offsetParent !== null && !(
            (node.labels && node.labels.length) || node.getAttribute('aria-label') ||
            node.textContent.trim())).map((node) => node.outerHTML)""")
        assert unlabelled == [], (loss, unlabelled)
    page.page.locator("#add-class").click()
    page.page.locator("#add-row").click()
    page.settle()
    assert page.page.locator("#matrix tbody tr").count() == 3
    assert page.page.locator("#matrix thead th").count() == 5  # a corner and four classes


@pytest.mark.parametrize("width", [1440, 375])
def test_screenshots_at_two_widths(browser, server, tmp_path_factory, width):
    folder = Path(os.environ.get("CROSSENT_SCREENSHOTS") or tmp_path_factory.mktemp("playground"))
    folder.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "zh"):
        shot = Page(browser, server, width=width, height=900)
        shot.open(f"{START}&lang={lang}")
        shot.wait("[...document.images].every((i) => i.complete && "
                                    "i.naturalWidth > 0)")
        # readable: nothing wider than the window (wide tables scroll inside their panel)
        assert shot.page.evaluate("document.documentElement.scrollWidth") <= width
        path = folder / f"playground-{lang}-{width}.png"
        shot.page.screenshot(path=str(path), full_page=True)
        for view, item in (("examples", "seed002-sigmoid-ce"), ("curves", "softmax-temperature")):
            key = "example" if view == "examples" else "plot"
            shot.open(f"?view={view}&{key}={item}&lang={lang}")
            shot.wait(f"document.querySelector('#{key} h3')")
            assert shot.page.evaluate("document.documentElement.scrollWidth") <= width
            shot.page.screenshot(path=str(folder / f"{view}-{lang}-{width}.png"), full_page=True)
        shot.page.close()
        assert shot.errors == []
        assert path.stat().st_size > 10_000
    print(f"screenshots in {folder}")
