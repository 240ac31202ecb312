"""`vidcorr review OUT` without a browser: which frames the page shows and their pictures, what it embeds, a batch's
page, and the errors (one line, exit 2). The page in Chromium is tests/test_review_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from equivariant import write_lossless_video
from PIL import Image
from typer.testing import CliRunner

from vidcorr.errors import InputError
from vidcorr.io.points import PointLabels
from vidcorr.io.ranking import rank_frames
from vidcorr.io.tracks import Tracks
from vidcorr.web.pages import page_asset
from vidcorr.web.review import build_review, next_output_name, output_labels
from vidcorr_cli.app import app

WIDTH, HEIGHT, NUM_FRAMES = 160, 120, 30
runner = CliRunner()
DATA_BLOCK = re.compile(r'<script type="application/json" id="vidcorr-data">(.*?)</script>', re.S)


def clip_frames(num_frames: int = NUM_FRAMES) -> list[np.ndarray]:
    """A white disc moving right 4 px a frame on grey; frame t's grey level is 40 + t (each frame its own)."""
    frames = []
    for t in range(num_frames):
        frame = np.full((HEIGHT, WIDTH, 3), 40 + t, np.uint8)
        cv2.circle(frame, (20 + 4 * t, 60), 8, (255, 255, 255), -1)
        frames.append(frame)
    return frames


def synthetic_tracks(video: str, num_frames: int = NUM_FRAMES) -> Tracks:
    """Point 0 follows the disc, with low confidence on frames 10..13; point 1 stands still but jumps by 20 px on
    frame 17."""
    points = np.stack([[[20.5 + 4 * t, 60.5], [80.5, 30.5 + (20 if t == 17 else 0)]] for t in range(num_frames)])
    confidence = np.ones((num_frames, 2))
    confidence[10:14, 0] = 0.3
    return Tracks(points=points, visible=confidence >= 0.5, confidence=confidence,
                  queries=[[0, 20.5, 60.5], [0, 80.5, 30.5]], frame_indices=np.arange(num_frames), fps=12.0,
                  size=(WIDTH, HEIGHT), meta={"video": video})


def write_output(root: Path, name: str = "clip") -> Path:
    """``<root>/<name>.avi`` and its track output ``<root>/<name>_vidcorr`` (tracks only, made without a model)."""
    video = root / f"{name}.avi"
    write_lossless_video(video, clip_frames())
    out = root / f"{name}_vidcorr"
    synthetic_tracks(str(video)).save_all(out)
    return out


def page_data(page: Path) -> dict:
    return json.loads(DATA_BLOCK.search(page.read_text(encoding="utf-8")).group(1))


def test_the_page_shows_sampled_frames_the_frames_to_check_and_the_labelled_ones(tmp_path):
    out = write_output(tmp_path)
    page = build_review(out, frames=4, check=3, max_side=80)
    assert page == out / "review.html"
    data = page_data(page)
    assert data["batch"] is False and len(data["videos"]) == 1
    video = data["videos"][0]
    tracks = Tracks.load_npz(out / "tracks.npz")
    ranking = rank_frames(tracks, output_labels(tracks))
    # Frames to check: the jump at 17 and its neighbours 16 and 18 (all saturate at 1; the larger jump first).
    assert ranking.frames_to_check(3) == [17, 16, 18]
    assert [video["rows"]["frames"][r] for r in video["ranking"]["check"]] == [17, 16, 18]
    # evenly_spaced(30, 4) = 0, 10, 19, 29 (the picker's rule), the frames to check, the labelled frame 0.
    assert [s["frame"] for s in video["shown"]] == [0, 10, 16, 17, 18, 19, 29]
    assert [s["row"] for s in video["shown"]] == [0, 10, 16, 17, 18, 19, 29]
    assert all(s["image"] == f"review/frame{s['frame']:06d}.jpg" for s in video["shown"])
    source = clip_frames()
    for shown in video["shown"]:
        with Image.open(out / shown["image"]) as picture:
            assert picture.size == (80, 60)  # the longer side shrunk to --max-side
            expected = np.asarray(Image.fromarray(source[shown["frame"]]).resize((80, 60), Image.Resampling.BOX))
            assert np.abs(np.asarray(picture).astype(int) - expected).mean() < 4  # JPEG at quality 85
    assert sorted(p.name for p in (out / "review").iterdir()) == sorted(
        [f"frame{s['frame']:06d}.jpg" for s in video["shown"]] + ["review.json"])
    assert video["ids"] == ["0", "1"] and video["labels"] == [[[0, 20.5, 60.5]], [[0, 80.5, 30.5]]]
    assert video["hidden"] == [[], []]
    np.testing.assert_allclose(video["ranking"]["score"], np.round(ranking.score, 4))
    np.testing.assert_allclose(video["rows"]["speed"], np.round(ranking.speed_px, 2))
    assert video["rows"]["points"][17] == [[88.5, 60.5], [80.5, 50.5]]
    assert data["command"] == (f"vidcorr track {tmp_path / 'clip.avi'} --points-file points.json --reuse {out} "
                               f"--out {out}_2")


def test_a_second_review_replaces_the_pictures(tmp_path):
    out = write_output(tmp_path)
    build_review(out, frames=2, check=0)
    assert sorted(p.name for p in (out / "review").iterdir()) == ["frame000000.jpg", "frame000029.jpg", "review.json"]
    build_review(out, frames=3, check=0)
    assert sorted(p.name for p in (out / "review").iterdir()) == [
        "frame000000.jpg", "frame000014.jpg", "frame000029.jpg", "review.json"]


def test_labels_and_marks_recorded_in_the_tracks_are_shown(tmp_path, monkeypatch):
    out = write_output(tmp_path)
    labels = PointLabels(("nose", "paw"), (np.array([[0, 20.5, 60.5], [25, 120.5, 60.5]]), np.array([[0, 80.5, 30.5]])),
                         hidden=(np.array([], dtype=np.int64), np.array([5])))
    monkeypatch.setattr("vidcorr.web.review.output_labels", lambda tracks: labels)
    video = page_data(build_review(out, frames=2, check=1))["videos"][0]
    assert video["ids"] == ["nose", "paw"]
    assert video["labels"] == [[[0, 20.5, 60.5], [25, 120.5, 60.5]], [[0, 80.5, 30.5]]]
    assert video["hidden"] == [[], [5]]
    assert [s["frame"] for s in video["shown"]] == [0, 5, 17, 25, 29]  # the labelled and marked frames too


def test_a_batch_gets_one_page_with_every_finished_video(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    entries = []
    for name in ("a", "b"):
        write_lossless_video(tmp_path / f"{name}.avi", clip_frames())
        synthetic_tracks(str(tmp_path / f"{name}.avi")).save_all(batch / name)
        entries.append({"video": str(tmp_path / f"{name}.avi"), "status": "done", "output": name, "name": name})
    entries.append({"video": str(tmp_path / "c.avi"), "status": "failed", "output": None, "name": "c"})
    (batch / "batch.json").write_text(json.dumps({"format": "vidcorr-batch-index", "entries": entries}))
    data = page_data(build_review(batch, frames=2, check=1))
    assert data["batch"] is True
    assert [v["name"] for v in data["videos"]] == ["a", "b"]
    assert [v["video"] for v in data["videos"]] == [str(tmp_path / "a.avi"), str(tmp_path / "b.avi")]
    assert data["videos"][1]["shown"][0]["image"] == "review/b/frame000000.jpg"
    assert (batch / "review" / "b" / "frame000017.jpg").is_file()


def test_the_page_is_the_package_assets_and_builds_no_html_from_strings(tmp_path):
    html = build_review(write_output(tmp_path), frames=2).read_text(encoding="utf-8")
    script = page_asset("common.js") + "\n" + page_asset("review.js")
    assert f"<script>{script}</script>" in html and html.count("<script") == 2
    for name in ("common.js", "review.js"):
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in page_asset(name)


def test_next_output_name():
    assert next_output_name(Path("runs/clip_vidcorr")) == str(Path("runs/clip_vidcorr_2"))
    assert next_output_name(Path("clip_vidcorr_2")) == "clip_vidcorr_3"
    assert next_output_name(Path("out")) == "out_2"


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: root / "nothing", "'{root}/nothing' is not a folder"),
    (lambda root: root, "nothing to review in '{root}': expected tracks.npz (from `vidcorr track`) or batch.json "
                        "(a batch's folder)"),
])
def test_nothing_to_review(tmp_path, make, message):
    with pytest.raises(InputError) as caught:
        build_review(make(tmp_path))
    assert str(caught.value) == message.format(root=tmp_path)


def test_the_video_must_be_found_and_be_the_one_tracked(tmp_path):
    out = write_output(tmp_path)
    (tmp_path / "clip.avi").rename(tmp_path / "moved.avi")
    result = runner.invoke(app, ["review", str(out), "--no-open"])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: the video of '{out}', '{tmp_path / 'clip.avi'}', is not found: give it "
                                     "with --video PATH")
    result = runner.invoke(app, ["review", str(out), "--no-open", "--video", str(tmp_path / "moved.avi")])
    assert result.exit_code == 0, result.output
    assert (out / "review.html").is_file()
    write_lossless_video(tmp_path / "short.avi", clip_frames(12))
    with pytest.raises(InputError, match=r"is not the one '.*clip_vidcorr' was tracked on \(160x120, frames up to "
                                         r"29\)$"):
        build_review(out, video=tmp_path / "short.avi")


def test_a_global_search_has_no_labels_to_review(tmp_path):
    tracks = synthetic_tracks("clip.avi")
    tracks.meta["global_search"] = True
    with pytest.raises(InputError, match=r"^this output was tracked with embeddings from another video \(a global "
                                         r"search\): none of its frames is labelled; track it from points to review "
                                         r"it$"):
        output_labels(tracks)


@pytest.mark.parametrize(("option", "message"), [
    (["--frames", "0"], "--frames 0 is invalid: it must be between 1 and 500"),
    (["--check", "501"], "--check 501 is invalid: it must be between 0 and 500"),
    (["--max-side", "8"], "--max-side 8 is invalid: it must be at least 16 pixels"),
])
def test_bad_options_are_one_line_errors(tmp_path, option, message):
    out = write_output(tmp_path)
    result = runner.invoke(app, ["review", str(out), "--no-open", *option])
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}"
    assert not (out / "review.html").exists()


def test_review_needs_no_model_stack(tmp_path):
    out = write_output(tmp_path)
    probe = ("import sys\nfrom vidcorr_cli.app import app\n"
             f"try:\n    app(['review', {str(out)!r}, '--no-open'], standalone_mode=False)\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (out / "review.html").is_file()
