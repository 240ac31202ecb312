"""The point picker in a real browser (Debian's Chromium, headless, Playwright; see test_view_browser.py): real
mouse and key events on the page `vidcorr pick` writes, opened from file:// with the network off, and the round
trip clicks -> saved points.json -> `vidcorr track --points-file` -> the same points as the tracks' queries."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from equivariant import write_lossless_video
from test_view_browser import CHROMIUM, CHROMIUM_ARGS, Session, _unavailable, assert_only_local_requests
from typer.testing import CliRunner

from vidcorr.io.points import read_points_file
from vidcorr.io.render import point_colors
from vidcorr.web.pick import build_pick_page
from vidcorr_cli.app import app

WIDTH, HEIGHT, NUM_FRAMES = 320, 240, 9
MAX_SIDE = 100  # the embedded pictures are 100x75: the page must still work in the video's own pixels
runner = CliRunner()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not (os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def session(browser):
    opened = Session(browser)
    yield opened
    opened.close()


def frames() -> list[np.ndarray]:
    """Frame t: a grey level 20 * t with a white square at a place of its own."""
    out = []
    for t in range(NUM_FRAMES):
        frame = np.full((HEIGHT, WIDTH, 3), 20 * t, np.uint8)
        cv2.rectangle(frame, (10 + 30 * t, 20), (40 + 30 * t, 50), (255, 255, 255), -1)
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pick") / "clip.avi"
    write_lossless_video(path, frames())
    return path


@pytest.fixture
def page(clip, tmp_path, session):
    built = build_pick_page(clip, tmp_path / "pick.html", frames=5, max_side=MAX_SIDE, video_arg=str(clip))
    opened = session.open(built)
    opened.wait_for_function("() => { const i = document.getElementById('frame'); "
                             "return i.complete && i.naturalWidth > 0; }", timeout=10_000)
    return opened


def stage_box(page) -> dict:
    return page.eval_on_selector("#overlay", "e => { const b = e.getBoundingClientRect(); "
                                 "return {x: b.left, y: b.top, width: b.width, height: b.height}; }")


def click_at(page, fx: float, fy: float, **kwargs) -> tuple[float, float]:
    """Click at fractions (fx, fy) of the shown picture (at a whole CSS pixel); returns the video pixel
    under the pointer, computed here from the picture's box."""
    box = stage_box(page)
    cx, cy = round(box["x"] + fx * box["width"]), round(box["y"] + fy * box["height"])
    page.mouse.click(cx, cy, **kwargs)
    return video_xy(box, cx, cy)


def video_xy(box: dict, cx: float, cy: float) -> tuple[float, float]:
    return (cx - box["x"]) / box["width"] * WIDTH, (cy - box["y"]) / box["height"] * HEIGHT


def screen_xy(box: dict, x: float, y: float) -> tuple[float, float]:
    return box["x"] + x / WIDTH * box["width"], box["y"] + y / HEIGHT * box["height"]


def shown_points(page) -> list[dict]:
    return json.loads(page.text_content("#json"))["points"]


def assert_points(page, expected: list[tuple[int, float, float]]) -> None:
    got = shown_points(page)
    assert [p["id"] for p in got] == list(range(len(expected)))
    assert [p["t"] for p in got] == [t for t, _, _ in expected]
    np.testing.assert_allclose([[p["x"], p["y"]] for p in got], [[x, y] for _, x, y in expected], atol=0.0051)


def test_clicks_add_numbered_points_in_the_videos_pixels_coloured_as_render(page, clip, session):
    box = stage_box(page)
    assert box["width"] > 3 * MAX_SIDE  # the picture is shown enlarged: clicks are scaled to the video's pixels
    assert box["width"] / box["height"] == pytest.approx(WIDTH / HEIGHT, rel=0.01)
    expected = [(0, *click_at(page, fx, fy)) for fx, fy in ((0.1, 0.2), (0.5, 0.5), (0.9, 0.75))]
    assert_points(page, expected)
    assert page.eval_on_selector_all("#overlay g.marker text", "ts => ts.map(t => t.textContent)") == ["0", "1", "2"]
    fills = page.eval_on_selector_all("#overlay g.marker circle.dot", "cs => cs.map(c => c.getAttribute('fill'))")
    assert fills == ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in point_colors(3)]
    assert page.eval_on_selector_all("#point-rows tr", "rs => rs.length") == 3

    assert page.text_content("#command") == f"vidcorr track {clip} --points-file points.json"
    listed = ";".join(f"{p['x']:g},{p['y']:g}" for p in shown_points(page))
    assert page.is_visible("#command-points")
    assert page.text_content("#command-points") == f'vidcorr track {clip} --points "{listed}" --ref-frame 0'
    assert_only_local_requests(session)


def test_the_slider_shows_the_sampled_frames_and_clicks_land_on_the_frame_shown(page):
    data = json.loads(page.text_content("#vidcorr-data"))
    assert [f["frame"] for f in data["frames"]] == [0, 2, 4, 6, 8]
    first = click_at(page, 0.25, 0.25)
    page.fill("#slider", "3")  # frame 6
    assert page.get_attribute("#frame", "src") == data["frames"][3]["src"]
    assert page.text_content("#frame-label").startswith("frame 6 of 9")
    assert page.eval_on_selector_all("#overlay g.marker", "gs => gs.length") == 0  # point 0 is on frame 0
    page.keyboard.press("Escape")  # point 0 is selected: without this the click would label it on frame 6
    second = click_at(page, 0.75, 0.5)
    assert_points(page, [(0, *first), (6, *second)])
    assert page.eval_on_selector_all("#overlay g.marker text", "ts => ts.map(t => t.textContent)") == ["1"]
    assert page.is_hidden("#command-points")  # two frames: only --points-file can say it
    page.keyboard.press("ArrowLeft")  # frame 4
    assert page.text_content("#frame-label").startswith("frame 4 of 9")


def test_drag_moves_a_point_and_undo_restores_it(page):
    box = stage_box(page)
    start = click_at(page, 0.3, 0.3)
    other = click_at(page, 0.6, 0.6)
    sx, sy = screen_xy(box, *start)
    target = (round(box["x"] + 0.45 * box["width"]), round(box["y"] + 0.8 * box["height"]))
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(*target, steps=5)
    page.mouse.up()
    moved = video_xy(box, *target)
    assert_points(page, [(0, *moved), (0, *other)])  # moved, not added

    page.keyboard.press("Control+z")  # the whole drag is one step
    assert_points(page, [(0, *start), (0, *other)])
    page.click("#undo")  # then the second click
    assert_points(page, [(0, *start)])
    page.keyboard.press("Control+z")
    assert shown_points(page) == []
    assert page.is_disabled("#undo")


def test_right_click_and_delete_remove_points_and_undo_brings_them_back(page):
    box = stage_box(page)
    placed = [click_at(page, fx, 0.5) for fx in (0.2, 0.4, 0.6, 0.8)]
    page.mouse.click(*screen_xy(box, *placed[1]), button="right")
    assert_points(page, [(0, *placed[0]), (0, *placed[2]), (0, *placed[3])])  # ids close up: 0, 1, 2
    assert page.eval_on_selector_all("#overlay g.marker text", "ts => ts.map(t => t.textContent)") == ["0", "1", "2"]
    fills = page.eval_on_selector_all("#overlay g.marker circle.dot", "cs => cs.map(c => c.getAttribute('fill'))")
    assert fills == ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in point_colors(3)]  # colours follow the ids

    page.mouse.click(*screen_xy(box, *placed[3]))  # select the last one (a click on a point adds nothing)
    assert len(shown_points(page)) == 3
    page.keyboard.press("Delete")
    assert_points(page, [(0, *placed[0]), (0, *placed[2])])
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert_points(page, [(0, *p) for p in placed])


def test_saved_points_json_tracks_the_clicked_points(page, clip, tmp_path):
    first = click_at(page, 0.2, 0.3)
    second = click_at(page, 0.7, 0.6)  # point 0 is labelled on this frame already: a new point
    page.fill("#slider", "2")  # frame 4
    page.click("#new-point")  # else the click labels the selected point 1 here
    third = click_at(page, 0.5, 0.4)
    with page.expect_download() as download:
        page.click("#save")
    assert download.value.suggested_filename == "points.json"
    saved = tmp_path / "points.json"
    download.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert document["format"] == "vidcorr-points" and document["size"] == [WIDTH, HEIGHT]
    assert document["num_frames"] == NUM_FRAMES and document["video"] == str(clip)

    expected = np.array([[0, *first], [0, *second], [4, *third]])
    labels = read_points_file(saved)
    assert labels.ids == ("0", "1", "2") and labels.counts.tolist() == [1, 1, 1]
    queries = labels.queries
    np.testing.assert_allclose(queries, expected, atol=0.0051)

    out = tmp_path / "tracked"
    result = runner.invoke(app, ["track", str(clip), "--points-file", str(saved), "--model", "tiny", "--preset",
                                 "fast", "--steps", "1", "--image-size", "64", "--device", "cpu", "--no-video",
                                 "--keyframes", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    tracked = np.load(out / "tracks.npz")["queries"]
    np.testing.assert_array_equal(tracked, queries.astype(np.float32))


def ghosts(page) -> list[dict]:
    """The faint markers on the frame shown: point id, the frame of the label drawn, its place, its opacity."""
    return page.eval_on_selector_all("#overlay g.ghost", """gs => gs.map(g => {
        const c = g.querySelector('circle');
        return {id: g.querySelector('text').textContent, frame: Number(g.getAttribute('data-frame')),
                x: Number(c.getAttribute('cx')), y: Number(c.getAttribute('cy')), stroke: c.getAttribute('stroke'),
                opacity: Number(getComputedStyle(g).opacity), events: getComputedStyle(g).pointerEvents};
    })""")


def markers(page) -> list[str]:
    return page.eval_on_selector_all("#overlay g.marker text", "ts => ts.map(t => t.textContent)")


def test_one_point_labelled_on_several_frames_with_ghosts_saved_with_its_id(page, clip, tmp_path):
    colours = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in point_colors(3)]
    a0 = click_at(page, 0.2, 0.3)  # point 0 on frame 0, selected
    b0 = click_at(page, 0.6, 0.6)  # point 0 has a label here: point 1, selected
    page.fill("#slider", "2")  # frame 4: both points show as ghosts at their frame-0 labels, the selected one brighter
    assert markers(page) == []
    shown = ghosts(page)
    assert [(g["id"], g["frame"], g["stroke"], g["opacity"], g["events"]) for g in shown] == [
        ("0", 0, colours[0], 0.45, "none"), ("1", 0, colours[1], 0.8, "none")]
    np.testing.assert_allclose([[g["x"], g["y"]] for g in shown], [a0, b0], atol=0.0051)

    b4 = click_at(page, 0.7, 0.5)  # a click on another frame labels the selected point 1 there
    assert markers(page) == ["1"]
    assert page.eval_on_selector_all("#overlay g.marker circle.dot", "cs => cs.map(c => c.getAttribute('fill'))") == [
        colours[1]]
    assert [g["id"] for g in ghosts(page)] == ["0"]

    page.click("#point-rows tr[data-index='0'][data-frame='0']")  # select point 0: its row shows its frame
    assert page.text_content("#frame-label").startswith("frame 0 of 9")
    page.fill("#slider", "4")  # frame 8
    shown = ghosts(page)
    assert [(g["id"], g["frame"]) for g in shown] == [("0", 0), ("1", 4)]  # each at its label nearest in time
    np.testing.assert_allclose([shown[1]["x"], shown[1]["y"]], b4, atol=0.0051)
    a8 = click_at(page, 0.1, 0.9)  # labels point 0 on frame 8
    page.keyboard.press("Escape")  # nothing selected: the next click is a new point
    c8 = click_at(page, 0.5, 0.2)
    assert markers(page) == ["0", "2"]
    page.fill("#slider", "2")  # frame 4 lies between point 0's labels 0 and 8: a tie, the earlier one is shown
    assert [(g["id"], g["frame"]) for g in ghosts(page)] == [("0", 0), ("2", 8)]
    page.fill("#slider", "3")  # frame 6: label 8 is nearer
    assert [(g["id"], g["frame"]) for g in ghosts(page)] == [("0", 8), ("1", 4), ("2", 8)]

    rows = page.eval_on_selector_all("#point-rows tr", "rs => rs.map(r => [r.cells[0].textContent, "
                                     "r.cells[1].textContent])")
    assert rows == [["0", "0"], ["0", "8"], ["1", "0"], ["1", "4"], ["2", "8"]]
    assert page.text_content("#count") == "3 points, 5 labels on 3 frames"
    assert page.is_hidden("#command-points")  # several frames: only --points-file can say it

    with page.expect_download() as download:
        page.click("#save")
    saved = tmp_path / "points.json"
    download.value.save_as(saved)
    assert [p["id"] for p in json.loads(saved.read_text())["points"]] == [0, 0, 1, 1, 2]
    labels = read_points_file(saved)
    assert labels.ids == ("0", "1", "2") and labels.counts.tolist() == [2, 2, 1]
    for got, want in zip(labels.labels, [[[0, *a0], [8, *a8]], [[0, *b0], [4, *b4]], [[8, *c8]]], strict=True):
        np.testing.assert_array_equal(got[:, 0], [t for t, _, _ in want])
        np.testing.assert_allclose(got, want, atol=0.0051)


def test_removing_a_label_keeps_the_point_until_its_last_label_goes(page):
    a0 = click_at(page, 0.3, 0.3)
    page.fill("#slider", "1")  # frame 2
    a2 = click_at(page, 0.4, 0.4)  # point 0 again
    box = stage_box(page)
    page.mouse.click(*screen_xy(box, *a2), button="right")  # its frame-2 label goes; the point stays
    assert markers(page) == [] and [g["id"] for g in ghosts(page)] == ["0"]
    assert [(p["id"], p["t"]) for p in shown_points(page)] == [(0, 0)]
    page.keyboard.press("Control+z")
    assert [(p["id"], p["t"]) for p in shown_points(page)] == [(0, 0), (0, 2)]
    page.fill("#slider", "0")
    page.mouse.click(*screen_xy(box, *a0))  # select it on frame 0 (a click on a label adds nothing)
    page.keyboard.press("Delete")
    assert [(p["id"], p["t"]) for p in shown_points(page)] == [(0, 2)]
    page.click("#point-rows tr[data-frame='2'] button.remove")  # the last label: the point goes
    assert shown_points(page) == [] and page.is_disabled("#new-point")


def test_command_boxes_wrap_between_words_only(page, clip):
    for fx in (0.11, 0.22, 0.33, 0.44, 0.55, 0.66):
        click_at(page, fx, 0.5)
    assert page.is_visible("#command-points")
    boxes = page.evaluate("""() => ['command', 'command-points'].map(id => {
        const box = document.getElementById(id), split = [], tops = new Set();
        for (const word of box.querySelectorAll('.word')) {
            const lines = new Set(Array.from(word.getClientRects()).map(r => Math.round(r.top)));
            if (lines.size > 1) split.push(word.textContent);
            lines.forEach(top => tops.add(top));
        }
        const side = document.querySelector('.sidebar').getBoundingClientRect().width;
        return {split: split, lines: tops.size, words: box.querySelectorAll('.word').length, side: side};
    })""")
    assert [b["split"] for b in boxes] == [[], []]  # no word (the video's path, the point list) is cut
    assert boxes[0]["words"] == 5 and boxes[0]["lines"] >= 2  # longer than its box: it wraps, between words
    assert boxes[1]["words"] == 7
    assert [b["side"] for b in boxes] == [360, 360]  # a long word scrolls in its box; the column keeps its width
