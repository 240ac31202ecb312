"""The viewer in a real browser: Debian's Chromium, headless, driven by Playwright (never `playwright install`).

The pages are built from a synthetic eval run (the real runner and visualizer with a stand-in predictor) and
synthetic track key frames, opened from file:// with the network off. Screenshots go to
$VIDCORR_TEST_ARTIFACTS (else the test's tmp_path). Without Chromium or Playwright the tests skip, except on
CI (CI set), where they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from synthetic_view import EVIL_CATEGORY, EVIL_IMAGE, EVIL_PAIR_ID, REF_FRAME, write_eval_run, write_track_run

from vidcorr.web.view import build_site

CHROMIUM = os.environ.get("VIDCORR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}: CI must install it (apt-get install chromium; pip install playwright)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Session:
    """A page in an offline context that records every request and aborts any that is not file://, and
    collects console errors and uncaught exceptions."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1150}, offline=True)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    def open(self, page_path: Path):
        self.page.goto(page_path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready=true]", timeout=10_000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(browser):
    opened = Session(browser)
    yield opened
    opened.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIDCORR_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def tile_sources(page, container: str) -> list[str]:
    return page.eval_on_selector_all(f"{container} img", "images => images.map(i => i.getAttribute('src'))")


def wait_images_loaded(page, selector: str) -> None:
    page.wait_for_function(
        "s => { const all = [...document.querySelectorAll(s)]; "
        "return all.length > 0 && all.every(i => i.complete && i.naturalWidth > 0); }", arg=selector, timeout=10_000)


def assert_only_local_requests(opened: Session) -> None:
    assert opened.requests, "the page requested nothing, not even itself"
    assert [url for url in opened.requests if not url.startswith("file://")] == []
    assert opened.errors == []


def test_clicking_a_line_shows_that_points_attention_maps(tmp_path, session, artifacts):
    out = write_eval_run(tmp_path)
    page = session.open(build_site(out))

    # The first pair is selected with its point 0; its three lines are drawn over the picture.
    assert page.text_content("#pair-title") == "000001-2008_000000-2009_000000:aeroplane"
    assert page.eval_on_selector_all("#pair-overlay g.corr", "gs => gs.map(g => g.getAttribute('class'))") == [
        "corr wrong", "corr correct", "corr correct selected"]  # the selected line is drawn last
    folder = "vis/000001-2008_000000-2009_000000_aeroplane"
    assert tile_sources(page, "#maps-src") == [f"{folder}/point00_src.png"] * 3  # layer 5, layer 8, mean
    assert page.eval_on_selector_all("#maps-src figcaption", "cs => cs.map(c => c.textContent)") == [
        "layer 5", "layer 8", "mean"]

    page.click('#pair-overlay g.corr[data-point="1"] line.hit')
    assert page.get_attribute('#pair-overlay g.corr[data-point="1"]', "class") == "corr wrong selected"
    assert tile_sources(page, "#maps-src") == [f"{folder}/point01_src.png"] * 3
    assert tile_sources(page, "#maps-trg") == [f"{folder}/point01_trg.png"] * 3
    assert page.eval_on_selector_all("#maps-src img, #maps-trg img", "is => is.map(i => i.dataset.point)") == \
        ["1"] * 6
    wait_images_loaded(page, "#pair-image, #maps-src img, #maps-trg img")
    assert "verdict" in page.text_content("#point-meta") and "wrong" in page.text_content("#point-meta")
    assert page.locator("#pair-overlay g.truth circle").count() == 1  # the ground truth of the wrong point
    page.screenshot(path=str(artifacts / "viewer_pairs.png"))

    # Keys: right -> point 2, down -> the next pair's point 0, up -> back.
    page.keyboard.press("ArrowRight")
    assert tile_sources(page, "#maps-trg")[0] == f"{folder}/point02_trg.png"
    page.keyboard.press("ArrowDown")
    assert page.text_content("#pair-title") == "000002-2008_000001-2009_000001:bus"
    assert tile_sources(page, "#maps-src")[0] == "vis/000002-2008_000001-2009_000001_bus/point00_src.png"
    page.keyboard.press("ArrowUp")
    assert page.text_content("#pair-title") == "000001-2008_000000-2009_000000:aeroplane"

    # Filters: a category, then pairs with a wrong point.
    page.select_option("#filter-category", label="bus")
    assert page.locator("#pair-list button").count() == 1
    assert page.text_content("#pair-title") == "000002-2008_000001-2009_000001:bus"
    page.select_option("#filter-category", label="all")
    page.select_option("#filter-verdict", value="wrong")
    assert page.eval_on_selector_all("#pair-list .name", "ns => ns.map(n => n.firstChild.textContent)") == [
        "000001-2008_000000-2009_000000:aeroplane", "000003-2008_000002-2009_000002:aeroplane"]
    assert page.text_content("#pair-summary") == "2 of 4 pairs \u00b7 mean PCK@0.1 (official) 58.3"
    assert_only_local_requests(session)


def test_names_with_markup_are_shown_as_text(tmp_path, session, artifacts):
    out = write_eval_run(tmp_path)
    page = session.open(build_site(out))
    page.select_option("#filter-category", label=EVIL_CATEGORY)
    assert page.locator("#pair-list button").count() == 1

    # No script ran: not the <script> of the image name, not the <img onerror> of the category, not the pair id
    # that tries to close the data block.
    assert page.evaluate("[typeof window.__xss, document.scripts.length, "
                         "document.querySelectorAll('#pairs-view img').length]") == [
        "undefined", 2, 1 + 2 * 3]  # the pair picture and three tiles per side
    assert page.text_content("#pair-title") == EVIL_PAIR_ID
    meta = page.text_content("#pair-meta")
    assert EVIL_CATEGORY in meta and f"{EVIL_IMAGE}.jpg" in meta
    assert page.get_by_text(f"{EVIL_IMAGE}.jpg", exact=True).is_visible()
    assert page.locator("#pair-meta script, #pair-meta img, #pair-list img, #pair-list script, #pair-list b").count() \
        == 0
    wait_images_loaded(page, "#pair-image, #maps-src img")
    page.screenshot(path=str(artifacts / "viewer_pairs_markup.png"))
    assert_only_local_requests(session)


def test_clicking_a_tracked_point_shows_its_heat_maps(tmp_path, session, artifacts):
    out, tracks, key_frames = write_track_run(tmp_path)
    page = session.open(build_site(out))
    assert page.get_attribute("#cur-image", "src") == "keyframes/frame000000.jpg"
    assert page.get_attribute("#ref-image", "src") == f"keyframes/frame{REF_FRAME:06d}.jpg"
    assert page.is_hidden("#cur-heat") and page.is_hidden("#ref-heat")
    centre = page.eval_on_selector('#cur-overlay g.marker[data-point="2"] circle:not(.ring)',
                                   "c => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]")
    assert centre == pytest.approx(tracks.points[0, 2].tolist())

    page.click('#cur-overlay g.marker[data-point="1"] circle.hit')
    assert page.get_attribute("#cur-heat", "src") == "keyframes/frame000000_point001.png"
    assert page.get_attribute("#ref-heat", "src") == f"keyframes/frame{REF_FRAME:06d}_point001.png"
    assert page.is_visible("#cur-heat") and page.is_visible("#ref-heat")
    assert page.text_content("#track-point-title") == "Point 1"

    # The slider runs over the key frames; the heat map follows the frame.
    page.fill("#frame-slider", "2")
    assert page.get_attribute("#cur-image", "src") == f"keyframes/frame{key_frames[2]:06d}.jpg"
    assert page.get_attribute("#cur-heat", "src") == f"keyframes/frame{key_frames[2]:06d}_point001.png"
    assert page.text_content("#frame-label") == f"frame {key_frames[2]} (key frame 3 of 4)"
    wait_images_loaded(page, "#cur-image, #cur-heat, #ref-image, #ref-heat")
    page.screenshot(path=str(artifacts / "viewer_tracks.png"))
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#cur-image", "src") == f"keyframes/frame{key_frames[3]:06d}.jpg"
    page.keyboard.press("ArrowUp")
    assert page.get_attribute("#cur-heat", "src") == f"keyframes/frame{key_frames[3]:06d}_point000.png"
    assert_only_local_requests(session)


def test_a_benchmark_videos_ground_truth_beside_its_joints(tmp_path, session, artifacts):
    """A JHMDB video's page (`eval jhmdb --visualize`): each joint's ground truth is a square joined to the
    prediction, its name in the list and the title, its error in pixels; clicking it shows its attention map."""
    tracks = write_track_run(tmp_path / "plain")[1]
    truth = tracks.points + np.array([3.0, 4.0])  # 5 px from every prediction
    names = [f"joint {chr(97 + i)}" for i in range(tracks.num_points)]
    out, _, key_frames = write_track_run(tmp_path, truth=truth, names=names)
    page = session.open(build_site(out))
    square = page.eval_on_selector('#cur-overlay g.gt[data-point="2"] rect',
                                   "r => [Number(r.getAttribute('x')) + Number(r.getAttribute('width')) / 2, "
                                   "Number(r.getAttribute('y')) + Number(r.getAttribute('height')) / 2]")
    assert square == pytest.approx(truth[0, 2].tolist(), abs=0.01)
    line = page.eval_on_selector('#cur-overlay g.gt[data-point="2"] line',
                                 "l => ['x1', 'y1', 'x2', 'y2'].map(k => Number(l.getAttribute(k)))")
    assert line == pytest.approx([*tracks.points[0, 2].tolist(), *truth[0, 2].tolist()], abs=0.01)
    assert page.text_content('#track-point-list button[data-point="1"] .name').startswith("1 joint b")
    page.click('#cur-overlay g.marker[data-point="1"] circle.hit')
    assert page.text_content("#track-point-title") == "Point 1: joint b"
    assert "5.0 px" in page.text_content("#track-point-meta")
    assert page.get_attribute("#cur-heat", "src") == "keyframes/frame000000_point001.png"
    page.fill("#frame-slider", "2")
    wait_images_loaded(page, "#cur-image, #cur-heat")
    page.screenshot(path=str(artifacts / "viewer_jhmdb_truth.png"))
    assert len(page.query_selector_all("#cur-overlay g.gt")) == tracks.num_points
    assert_only_local_requests(session)
