"""The labelling loop end to end, with real mouse events in headless Chromium (as test_pick_browser.py): a tiny-model
run of `vidcorr track`, its `vidcorr review` page, the first frame to check, two points dragged on two frames, a
label removed and the removal undone, Save; then `vidcorr track --reuse` with the saved file. The corrected frames
hold the corrections exactly, the untouched points keep the first run's embeddings byte for byte, and the refitted
points have the labels expected."""

from __future__ import annotations

import json

import numpy as np
import test_view_browser
from conftest import random_image
from safetensors.numpy import load_file
from test_view_browser import assert_only_local_requests
from typer.testing import CliRunner

from vidcorr.io.points import PointLabels, read_points_file, write_points_file
from vidcorr.io.ranking import rank_frames
from vidcorr.io.sample import write_synthetic_video
from vidcorr.io.tracks import Tracks
from vidcorr.method.embeddings import Embeddings
from vidcorr_cli.app import app

WIDTH, HEIGHT, NUM_FRAMES = 96, 72, 9
TINY = ["--model", "tiny", "--device", "cpu", "--no-video", "--keyframes", "0"]
runner = CliRunner()
browser = test_view_browser.browser  # the fixtures: one Chromium per module, an offline page per test
session = test_view_browser.session

LABELS = PointLabels(("a", "b", "c", "d"), (np.array([[0, 20.5, 20.5], [8, 30.5, 24.5]]),
                                            np.array([[0, 70.5, 20.5]]), np.array([[0, 20.5, 55.5]]),
                                            np.array([[0, 75.5, 50.5]])))


def cli(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def drag_one(page, labelled_here: set[str], frame: int) -> tuple[str, tuple[float, float]]:
    """Drag, by real mouse events, a point not labelled on this frame whose marker is the one under its centre;
    returns its id and the video point under the pointer at the end (computed here from the picture's box)."""
    box = page.eval_on_selector("#overlay", "e => { const b = e.getBoundingClientRect(); "
                                "return {x: b.left, y: b.top, width: b.width, height: b.height}; }")
    candidates = page.eval_on_selector_all("#overlay g.marker", """gs => gs.map(g => {
        const r = g.querySelector('.ring'), b = r.getBoundingClientRect();
        const cx = b.left + b.width / 2, cy = b.top + b.height / 2;
        const hit = document.elementFromPoint(cx, cy), owner = hit && hit.closest('.marker');
        return {id: g.getAttribute('data-id'), cx: cx, cy: cy, mine: owner === g};
    })""")
    chosen = next(c for c in candidates if c["mine"] and c["id"] not in labelled_here)
    # Towards the picture's centre, so that the end stays inside the frame.
    dx = 30 if chosen["cx"] < box["x"] + box["width"] / 2 else -30
    dy = 20 if chosen["cy"] < box["y"] + box["height"] / 2 else -20
    target = (round(chosen["cx"]) + dx, round(chosen["cy"]) + dy)
    page.mouse.move(chosen["cx"], chosen["cy"])
    page.mouse.down()
    page.mouse.move(*target, steps=6)
    page.mouse.up()
    assert page.text_content("#status") == f"point {chosen['id']} is labelled on frame {frame}"
    return chosen["id"], ((target[0] - box["x"]) / box["width"] * WIDTH,
                          (target[1] - box["y"]) / box["height"] * HEIGHT)


def frame_shown(page) -> int:
    return int(page.text_content("#frame-label").split()[1])


def test_review_correct_save_and_track_again_with_reuse(tmp_path, session):
    pictures = [random_image(HEIGHT, WIDTH, seed=s) for s in range(NUM_FRAMES)]
    video = write_synthetic_video(tmp_path / "clip.mkv", pictures, fps=10.0, codec="FFV1")
    first_points = write_points_file(tmp_path / "first.json", LABELS)
    cli("track", str(video), "--points-file", str(first_points), "--preset", "fast", "--steps", "2", "--image-size",
        "64", *TINY, "--out", str(tmp_path / "run1"))
    cli("review", str(tmp_path / "run1"), "--no-open", "--frames", "5", "--check", "4")
    page = session.open(tmp_path / "run1" / "review.html")
    page.wait_for_function("() => { const i = document.getElementById('frame'); "
                           "return i.complete && i.naturalWidth > 0; }", timeout=10_000)
    tracks = Tracks.load_npz(tmp_path / "run1" / "tracks.npz")
    to_check = rank_frames(tracks).frames_to_check(4)

    # The first frame to check, then the next: a correction on each.
    page.keyboard.press("ArrowDown")
    assert frame_shown(page) == to_check[0] and page.text_content("#frame-label").endswith("to check #1")
    first_frame = to_check[0]
    labelled = {i for i, rows in zip(LABELS.ids, LABELS.labels, strict=True) if first_frame in rows[:, 0]}
    first_id, first_xy = drag_one(page, labelled | {"a"}, first_frame)  # a: its label is removed below
    page.keyboard.press("ArrowDown")
    second_frame = to_check[1]
    assert frame_shown(page) == second_frame
    labelled = {i for i, rows in zip(LABELS.ids, LABELS.labels, strict=True) if second_frame in rows[:, 0]}
    second_id, second_xy = drag_one(page, labelled | {"a", first_id}, second_frame)

    # Remove point a's label on frame 8 (it keeps its frame-0 label), then undo that removal.
    shown = [s["frame"] for s in json.loads(page.text_content("#vidcorr-data"))["videos"][0]["shown"]]
    page.fill("#slider", str(shown.index(8)))
    assert frame_shown(page) == 8
    page.click("#point-rows tr[data-index='0']")  # select point a
    page.keyboard.press("Delete")
    assert page.text_content("#status") == "removed the label of point a on frame 8"
    assert [r["t"] for r in json.loads(page.text_content("#json"))["points"] if r["id"] == "a"] == [0]
    page.keyboard.press("Control+z")
    assert [r["t"] for r in json.loads(page.text_content("#json"))["points"] if r["id"] == "a"] == [0, 8]

    with page.expect_download() as download:
        page.click("#save")
    saved = tmp_path / "points.json"
    download.value.save_as(saved)
    assert_only_local_requests(session)

    labels = read_points_file(saved)
    assert labels.ids == LABELS.ids
    corrections = {first_id: (first_frame, first_xy), second_id: (second_frame, second_xy)}
    expected = {}
    for point_id, rows in zip(LABELS.ids, LABELS.labels, strict=True):
        if point_id in corrections:
            t, xy = corrections[point_id]
            rows = np.concatenate([rows, [[t, *xy]]])
        expected[point_id] = rows[np.argsort(rows[:, 0])]
    for point_id, rows in zip(labels.ids, labels.labels, strict=True):
        np.testing.assert_array_equal(rows[:, 0], expected[point_id][:, 0])
        np.testing.assert_allclose(rows, expected[point_id], atol=0.0051)  # the drag, to the page's 0.01 px

    cli("track", str(video), "--points-file", str(saved), "--reuse", str(tmp_path / "run1"), *TINY,
        "--out", str(tmp_path / "run2"))
    again = Tracks.load_npz(tmp_path / "run2" / "tracks.npz")
    index = {point_id: n for n, point_id in enumerate(labels.ids)}
    # The corrected frames hold the corrections exactly (as saved, in float32 as tracks are).
    for point_id, (t, _) in corrections.items():
        row = int(np.flatnonzero(again.frame_indices == t)[0])
        saved_xy = labels.labels[index[point_id]][labels.labels[index[point_id]][:, 0] == t, 1:][0]
        np.testing.assert_array_equal(again.points[row, index[point_id]], saved_xy.astype(np.float32))
        assert again.visible[row, index[point_id]] and again.confidence[row, index[point_id]] == 1
    # The untouched points keep the first run's embeddings byte for byte; the corrected ones were fitted again.
    before = load_file(str(tmp_path / "run1" / "embeddings.safetensors"))["embeddings"]
    after = load_file(str(tmp_path / "run2" / "embeddings.safetensors"))["embeddings"]
    refitted = sorted(corrections, key=index.__getitem__)
    assert again.meta["refitted"] == refitted
    for point_id in labels.ids:
        same = after[index[point_id]].tobytes() == before[LABELS.ids.index(point_id)].tobytes()
        assert same == (point_id not in corrections), point_id
    # The refitted points have the labels expected: their original one and the correction.
    fitted = Embeddings.load(tmp_path / "run2" / "embeddings.safetensors")
    assert fitted.labels is not None and again.labels is not None
    for point_id in refitted:
        np.testing.assert_array_equal(fitted.labels.labels[index[point_id]], labels.labels[index[point_id]])
        np.testing.assert_array_equal(again.labels.labels[index[point_id]], labels.labels[index[point_id]])
    assert fitted.extra["refitted"] == refitted
