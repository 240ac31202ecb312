"""The review page in a real browser (Debian's Chromium, headless, Playwright, as test_pick_browser.py): real mouse
and key events on the page `vidcorr review` writes over synthetic tracks, opened from file:// with the network off.
The loop with a model (review, save, re-track with --reuse) is tests/test_review_loop.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_view_browser
from equivariant import write_lossless_video
from test_review import HEIGHT, WIDTH, clip_frames, synthetic_tracks, write_output
from test_view_browser import assert_only_local_requests

from vidcorr.io.points import read_points_file, read_video_points_file
from vidcorr.web.review import build_review

browser = test_view_browser.browser  # the fixtures: one Chromium per module, an offline page per test
session = test_view_browser.session


@pytest.fixture
def page(tmp_path, session):
    return open_review(session, build_review(write_output(tmp_path), frames=4, check=3))


def open_review(session, built: Path):
    opened = session.open(built)
    opened.wait_for_function("() => { const i = document.getElementById('frame'); "
                             "return i.complete && i.naturalWidth > 0; }", timeout=10_000)
    return opened


def box_of(page, selector: str = "#overlay") -> dict:
    return page.eval_on_selector(selector, "e => { const b = e.getBoundingClientRect(); "
                                 "return {x: b.left, y: b.top, width: b.width, height: b.height}; }")


def screen_xy(box: dict, x: float, y: float) -> tuple[float, float]:
    return box["x"] + x / WIDTH * box["width"], box["y"] + y / HEIGHT * box["height"]


def video_xy(box: dict, cx: float, cy: float) -> tuple[float, float]:
    return (cx - box["x"]) / box["width"] * WIDTH, (cy - box["y"]) / box["height"] * HEIGHT


def drag(page, start_xy: tuple[float, float], by_px: tuple[int, int]) -> tuple[float, float]:
    """Drag from video point `start_xy` by `by_px` CSS pixels (to a whole CSS pixel); returns the video point
    under the pointer at the end, computed here from the picture's box."""
    box = box_of(page)
    sx, sy = screen_xy(box, *start_xy)
    target = (round(sx) + by_px[0], round(sy) + by_px[1])
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(*target, steps=5)
    page.mouse.up()
    return video_xy(box, *target)


def frame_shown(page) -> int:
    return int(page.text_content("#frame-label").split()[1])


def saved_rows(page) -> list[dict]:
    return json.loads(page.text_content("#json"))["points"]


def marker(page, point: int) -> dict:
    return page.eval_on_selector(f"#overlay g.marker[data-index='{point}']", """g => ({
        cls: g.getAttribute('class'), id: g.getAttribute('data-id'),
        shape: g.querySelector('.shape').tagName,
        x: Number(g.querySelector('.ring').getAttribute('cx')),
        y: Number(g.querySelector('.ring').getAttribute('cy'))})""")


def test_keys_walk_the_frames_to_check_and_every_frame_shown(page, session):
    assert frame_shown(page) == 0
    assert page.eval_on_selector_all("#check-rows tr", "rs => rs.map(r => [r.cells[1].textContent, "
                                     "r.cells[2].textContent, r.cells[3].textContent])") == [
        ["17", "1.00", "1: jump 20.0 px"], ["16", "1.00", "1: jump 10.0 px"], ["18", "1.00", "1: jump 10.0 px"]]
    for expected in (17, 16, 18, 18):  # the last press stays on the last frame to check
        page.keyboard.press("ArrowDown")
        assert frame_shown(page) == expected
    page.keyboard.press("ArrowUp")
    assert frame_shown(page) == 16
    assert page.text_content("#frame-label").endswith("to check #2")
    assert page.text_content("#score") == ("score 1.00 \u2014 lowest confidence 1.00 (point 0), largest jump 10.0 px "
                                           "(point 1)")
    page.keyboard.press("ArrowRight")  # every frame shown: 0, 10, 16, 17, 18, 19, 29
    assert frame_shown(page) == 17
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert frame_shown(page) == 10
    page.click("#check-rows tr[data-frame='18']")
    assert frame_shown(page) == 18
    # Every tracked point on the frame, at its tracked place, a disc where visible.
    tracks = synthetic_tracks("clip.avi")
    for p in (0, 1):
        shown = marker(page, p)
        assert shown["shape"] == "circle" and "visible" in shown["cls"].split()
        np.testing.assert_allclose([shown["x"], shown["y"]], tracks.points[18, p], atol=0.01)
    assert_only_local_requests(session)


def test_the_chart_marks_the_frames_to_check_and_a_click_shows_the_nearest_frame(page):
    marks = page.eval_on_selector_all("#chart line.check-mark", "ls => ls.map(l => [Number(l.getAttribute("
                                      "'data-frame')), Number(l.getAttribute('x1'))])")
    assert marks == [[17, pytest.approx(17 / 29 * 1000)], [16, pytest.approx(16 / 29 * 1000)],
                     [18, pytest.approx(18 / 29 * 1000)]]
    labels = page.eval_on_selector_all("#chart line.label-mark", "ls => ls.map(l => [l.getAttribute('data-index'), "
                                       "Number(l.getAttribute('data-frame'))])")
    assert labels == [["0", 0], ["1", 0]]
    confidence = page.get_attribute("#chart polyline.confidence[data-index='0']", "points").split()
    assert len(confidence) == 30
    x, y = (float(v) for v in confidence[11].split(","))
    assert x == pytest.approx(11 / 29 * 1000) and y == pytest.approx(96 - 92 * 0.3)  # the band is 4..96; c = 0.3
    chart = box_of(page, "#chart")
    for frame, nearest in ((23, 19), (25, 29), (3, 0), (12, 10), (14, 16)):  # shown: 0 10 16 17 18 19 29
        page.mouse.click(chart["x"] + frame / 29 * chart["width"], chart["y"] + chart["height"] / 2)
        assert frame_shown(page) == nearest
    cursor = float(page.get_attribute("#chart line.cursor", "x1"))
    assert cursor == pytest.approx(16 / 29 * 1000)


def test_a_drag_makes_a_label_a_second_drag_moves_it_and_undo_takes_each_back(page):
    page.keyboard.press("ArrowDown")  # frame 17: point 1 jumped to (80.5, 50.5)
    before = saved_rows(page)
    page.mouse.click(*screen_xy(box_of(page), 80.5, 50.5))  # a click selects; it labels nothing
    assert saved_rows(page) == before and page.is_disabled("#undo")
    first = drag(page, (80.5, 50.5), (0, -60))
    assert marker(page, 1)["shape"] == "rect" and "corrected" in marker(page, 1)["cls"].split()
    second = drag(page, first, (15, 5))
    rows = [r for r in saved_rows(page) if r["id"] == "1"]
    assert [r["t"] for r in rows] == [0, 17]
    np.testing.assert_allclose([rows[1]["x"], rows[1]["y"]], second, atol=0.0051)
    assert page.eval_on_selector("#point-rows tr[data-index='1']", "r => r.cells[1].textContent") == "2 *"
    page.keyboard.press("Control+z")
    rows = [r for r in saved_rows(page) if r["id"] == "1"]
    np.testing.assert_allclose([rows[1]["x"], rows[1]["y"]], first, atol=0.0051)
    page.click("#undo")
    assert saved_rows(page) == before and page.is_disabled("#undo")


def test_remove_a_label_keep_the_last_one_and_mark_a_point_not_visible(page):
    page.keyboard.press("ArrowDown")  # frame 17
    drag(page, (88.5, 60.5), (10, 10))  # point 0 labelled on 17
    page.keyboard.press("Delete")
    assert [(r["id"], r["t"]) for r in saved_rows(page)] == [("0", 0), ("1", 0)]
    page.fill("#slider", "0")  # frame 0: the labels
    assert frame_shown(page) == 0
    page.mouse.click(*screen_xy(box_of(page), 20.5, 60.5), button="right")
    assert page.text_content("#status") == "point 0 has no other label: a point keeps at least one"
    assert [(r["id"], r["t"]) for r in saved_rows(page)] == [("0", 0), ("1", 0)]
    page.click("#check-rows tr[data-frame='17']")
    page.mouse.click(*screen_xy(box_of(page), 80.5, 50.5))  # select point 1
    page.keyboard.press("h")
    assert "hidden" in marker(page, 1)["cls"].split()
    assert saved_rows(page)[-1] == {"id": "1", "t": 17, "visible": False}
    assert page.text_content("#hide") == "Visible here"
    page.keyboard.press("h")  # again: the mark goes
    assert [(r["id"], r["t"]) for r in saved_rows(page)] == [("0", 0), ("1", 0)]
    page.keyboard.press("Control+z")  # the mark comes back
    assert saved_rows(page)[-1] == {"id": "1", "t": 17, "visible": False}
    page.keyboard.press("Control+z")  # then goes
    page.keyboard.press("Control+z")  # and the removed label comes back
    assert [(r["id"], r["t"]) for r in saved_rows(page)] == [("0", 0), ("0", 17), ("1", 0)]


def test_save_writes_a_points_file_with_every_label_and_mark(page, tmp_path):
    page.keyboard.press("ArrowDown")  # frame 17
    moved = drag(page, (80.5, 50.5), (0, -60))
    page.mouse.click(*screen_xy(box_of(page), 88.5, 60.5))
    page.keyboard.press("h")  # point 0 not visible on 17
    with page.expect_download() as download:
        page.click("#save")
    assert download.value.suggested_filename == "points.json"
    saved = tmp_path / "points.json"
    download.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert document["format"] == "vidcorr-points" and document["version"] == 1
    assert document["video"] == str(tmp_path / "clip.avi") and document["size"] == [WIDTH, HEIGHT]
    assert document["num_frames"] == 30
    labels = read_points_file(saved)
    assert labels.ids == ("0", "1") and labels.counts.tolist() == [1, 2]
    assert [h.tolist() for h in labels.hidden] == [[17], []]
    np.testing.assert_array_equal(labels.labels[0], [[0, 20.5, 60.5]])  # the original labels, exactly
    np.testing.assert_allclose(labels.labels[1], [[0, 80.5, 30.5], [17, *moved]], atol=0.0051)


def test_a_batchs_page_switches_videos_and_saves_one_file_naming_them(tmp_path, session):
    batch = tmp_path / "batch"
    entries = []
    for name in ("a", "b"):
        write_lossless_video(tmp_path / f"{name}.avi", clip_frames())
        synthetic_tracks(str(tmp_path / f"{name}.avi")).save_all(batch / name)
        entries.append({"video": str(tmp_path / f"{name}.avi"), "status": "done", "output": name})
    (batch / "batch.json").write_text(json.dumps({"entries": entries}))
    page = open_review(session, build_review(batch, frames=3, check=2))
    assert page.is_visible("#video-choice")
    page.select_option("#video-choice", "1")
    assert page.text_content("#video-name") == str(tmp_path / "b.avi")
    page.keyboard.press("ArrowDown")
    moved = drag(page, (80.5, 50.5), (0, -60))
    with page.expect_download() as download:
        page.click("#save")
    saved = tmp_path / "points.json"
    download.value.save_as(saved)
    by_video = read_video_points_file(saved)
    assert list(by_video) == [str(tmp_path / "a.avi"), str(tmp_path / "b.avi")]
    assert by_video[str(tmp_path / "a.avi")].counts.tolist() == [1, 1]
    np.testing.assert_allclose(by_video[str(tmp_path / "b.avi")].labels[1], [[0, 80.5, 30.5], [17, *moved]],
                               atol=0.0051)
    page.select_option("#video-choice", "0")
    page.keyboard.press("Control+z")  # the undo goes back to video b
    assert page.text_content("#video-name") == str(tmp_path / "b.avi")
    assert [r["t"] for r in saved_rows(page) if r["video"].endswith("b.avi")] == [0, 0]
    assert_only_local_requests(session)
