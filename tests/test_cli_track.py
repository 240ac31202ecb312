import csv

import cv2
import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video
from typer.testing import CliRunner

import vidcorr
from vidcorr.io.tracks import Tracks
from vidcorr.pipelines import track as track_pipeline
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]
FRAMES, FPS = 6, 12.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    base = random_image(48, 64, seed=4)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_lossless_video(path, [np.roll(base, 3 * k, axis=1) for k in range(FRAMES)], fps=FPS)
    return path


@pytest.fixture(scope="module")
def tracked(clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10;40.5,30.5;60,45", "--ref-frame", "2",
                                 "--heatmap", "1", "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out


def test_track_writes_tracks_and_a_video(tracked):
    data = np.load(tracked / "tracks.npz")
    assert data["points"].shape == (FRAMES, 3, 2) and data["visible"].shape == (FRAMES, 3)
    assert data["confidence"].shape == (FRAMES, 3) and data["queries"].shape == (3, 3)
    np.testing.assert_array_equal(data["queries"], [[2, 10, 10], [2, 40.5, 30.5], [2, 60, 45]])
    np.testing.assert_array_equal(data["points"][2], [[10, 10], [40.5, 30.5], [60, 45]])
    rows = list(csv.DictReader((tracked / "tracks.csv").open()))
    assert len(rows) == FRAMES * 3
    capture = cv2.VideoCapture(str(tracked / "annotated.mp4"))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    assert (count, size) == (FRAMES, (64, 48))
    assert abs(capture.get(cv2.CAP_PROP_FPS) - FPS) <= 0.01
    emb = vidcorr.Embeddings.load(tracked / "embeddings.safetensors")
    assert emb.frames.tolist() == [2, 2, 2] and emb.extra["video_frames"] == FRAMES


def test_reusing_the_embeddings_gives_the_same_tracks(clip, tracked, tmp_path):
    result = runner.invoke(app, ["track", str(clip), "--embeddings", str(tracked / "embeddings.safetensors"),
                                 "--no-video", "-o", str(tmp_path), "--model", "tiny", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    a, b = Tracks.load_npz(tracked / "tracks.npz"), Tracks.load_npz(tmp_path / "tracks.npz")
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    assert not (tmp_path / "annotated.mp4").exists()


def test_fit_then_track(clip, tracked, tmp_path):
    result = runner.invoke(app, ["fit", str(clip), "--points", "10,10;40.5,30.5;60,45", "--ref-frame", "2",
                                 "-o", str(tmp_path / "e.safetensors"), *TINY])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["track", str(clip), "--embeddings", str(tmp_path / "e.safetensors"), "--no-video",
                                 "-o", str(tmp_path / "out"), "--model", "tiny", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(Tracks.load_npz(tmp_path / "out" / "tracks.npz").points,
                                  Tracks.load_npz(tracked / "tracks.npz").points)


def test_render_redraws_without_a_model(clip, tracked, tmp_path):
    result = runner.invoke(app, ["render", str(clip), str(tracked / "tracks.npz"), "-o", str(tmp_path / "r.mp4")])
    assert result.exit_code == 0, result.output
    capture = cv2.VideoCapture(str(tmp_path / "r.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES


def test_fit_on_an_image(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), random_image(40, 50))
    result = runner.invoke(app, ["fit", str(tmp_path / "a.png"), "--grid", "2", "-o", str(tmp_path / "e.safetensors"),
                                 *TINY])
    assert result.exit_code == 0, result.output
    emb = vidcorr.Embeddings.load(tmp_path / "e.safetensors")
    np.testing.assert_allclose(emb.points, [[5, 4], [45, 4], [5, 36], [45, 36]])
    assert emb.frames is None
    assert emb.precision == "float32" and emb.skipped_steps.tolist() == [0, 0, 0, 0]
    assert "skipped" not in result.output


def test_fit_warns_when_float16_skipped_steps(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "a.png"), random_image(40, 50))
    original = vidcorr.fit

    def fit(*args, **kwargs):  # as if sample overflows had skipped 3 steps of point 1
        emb = original(*args, **kwargs)
        emb.skipped_steps = np.array([0, 3])
        return emb

    monkeypatch.setattr(vidcorr, "fit", fit)
    result = runner.invoke(app, ["fit", str(tmp_path / "a.png"), "--points", "5,5;20,20", "-o",
                                 str(tmp_path / "e.safetensors"), *TINY])
    assert result.exit_code == 0, result.output
    steps = 1 * 2 * vidcorr.Config.preset("fast").restarts
    shown = " ".join(result.output.split())
    assert f"warning: 3 of {steps} fit steps (points x restarts x steps) were skipped" in shown
    assert vidcorr.Embeddings.load(tmp_path / "e.safetensors").skipped_steps.tolist() == [0, 3]


def _empty_video(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (64, 48))
    writer.release()
    return path


@pytest.mark.parametrize(("make_args", "message"), [
    (lambda clip, tmp: [str(_text(tmp)), "--points", "1,1"], "error: cannot read video '{tmp}/notvideo.mp4'"),
    (lambda clip, tmp: [str(_empty_video(tmp / "empty.avi")), "--points", "1,1"],
     "error: video '{tmp}/empty.avi' has no frames"),
    (lambda clip, tmp: [str(clip), "--points", "1,1", "--ref-frame", "6"],
     "error: --ref-frame 6 is past the end of the video (frames 0..5)"),
    (lambda clip, tmp: [str(clip), "--points", "10,10;64.5,3"],
     "error: query 1 (64.5, 3) is outside the frame (64x48 pixels)"),
    (lambda clip, tmp: [str(clip), "--grid", "0"], "error: --grid must be at least 1, got 0"),
    (lambda clip, tmp: [str(clip), "--points", "1,1", "--heatmap", "3"], "error: --heatmap 3 is not a point id (0..0)"),
    (lambda clip, tmp: [str(clip), "--points", "1,1", "--end", "9"],
     "error: end frame 9 is out of range 1..6 (start is 0, the video has 6 frames)"),
])
def test_bad_input_is_one_line_and_writes_nothing(clip, tmp_path, make_args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", *make_args(clip, tmp_path), "-o", str(out), *TINY])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(tmp=tmp_path)), lines
    assert not out.exists()


def _text(tmp):
    (tmp / "notvideo.mp4").write_text("this is not a video")
    return tmp / "notvideo.mp4"


def test_unwritable_out(clip, tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    result = runner.invoke(app, ["track", str(clip), "--points", "1,1", "-o", str(tmp_path / "ro" / "out"), *TINY])
    (tmp_path / "ro").chmod(0o700)
    import os

    if os.geteuid() == 0:  # root writes anywhere: make the folder a file instead
        (tmp_path / "blocker").write_text("x")
        result = runner.invoke(app, ["track", str(clip), "--points", "1,1", "-o", str(tmp_path / "blocker" / "out"),
                                     *TINY])
        assert result.stderr.strip().splitlines() == [
            f"error: output folder '{tmp_path / 'blocker' / 'out'}' is not writable"]
    assert result.exit_code == 2


def test_mismatched_embeddings_are_refused(clip, tracked, tmp_path):
    result = runner.invoke(app, ["track", str(clip), "--embeddings", str(tracked / "embeddings.safetensors"),
                                 "-o", str(tmp_path / "out"), "--model", "tiny", "--image-size", "128"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: embeddings were fitted with image_size=64, this run uses image_size=128; fit again or use the same "
        "image_size")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_tracking_or_rendering_leaves_no_output(clip, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(track_pipeline, "track", interrupt)
    result = runner.invoke(app, ["track", str(clip), "--points", "1,1", "-o", str(tmp_path / "a"), *TINY])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "error: interrupted; no complete-looking output was left behind"
    assert not (tmp_path / "a").exists()
    monkeypatch.undo()

    import vidcorr.io.render as render_module

    original_write = render_module.VideoWriter.write
    calls = {"n": 0}

    def write_then_interrupt(self, frame):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original_write(self, frame)

    monkeypatch.setattr(render_module.VideoWriter, "write", write_then_interrupt)
    result = runner.invoke(app, ["track", str(clip), "--points", "1,1", "-o", str(tmp_path / "b"), *TINY])
    assert result.exit_code == 130
    assert not (tmp_path / "b").exists()
