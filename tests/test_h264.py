"""H.264 output: the codec read from the file itself, odd sizes, the mp4v fallback's warning, and playback in
headless Chromium (a bare <video> element, and the viewer's inline player)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from synthetic_view import TRACK_FRAMES, write_track_run
from test_view_browser import browser, session  # noqa: F401 (pytest fixtures)
from typer.testing import CliRunner

import vidcorr.io.writer as video_module
from vidcorr.errors import InputError
from vidcorr.io.render import render_video
from vidcorr.io.sample import synthetic_frames
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.io.writer import NO_H264_WARNING, VideoWriter
from vidcorr.web.view import build_site
from vidcorr_cli.app import app

runner = CliRunner()


def probe(path: Path) -> dict:
    """What the file says about its first video stream, read with PyAV (FFmpeg's demuxer and parser)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return {"codec": context.name, "pix_fmt": context.pix_fmt, "profile": context.profile,
                "size": (context.width, context.height), "fps": float(stream.average_rate),
                "colorspace": context.colorspace, "color_range": context.color_range, "frames": np.stack(decoded)}


def blocky_frames(num_frames: int, width: int, height: int) -> np.ndarray:
    """8x8 blocks of random grey, moving one block right per frame: sharp edges that show any shift (grey, so
    that 4:2:0's halved chroma resolution does not blur them)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + num_frames + 1, 1), dtype=np.uint8).repeat(3, 2)
    big = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
    return np.stack([big[:height, 8 * t: 8 * t + width] for t in range(num_frames)])


def test_default_mp4_is_h264_yuv420p(tmp_path):
    frames = synthetic_frames(10, (96, 64))[0]
    with VideoWriter(tmp_path / "out.mp4", fps=25.0, size=(96, 64)) as writer:
        writer.write_batch(frames)
    assert (writer.codec, writer.warning, writer.encoded_size) == ("h264", None, (96, 64))
    info = probe(tmp_path / "out.mp4")
    assert (info["codec"], info["pix_fmt"], info["profile"], info["size"]) == ("h264", "yuv420p", "High", (96, 64))
    assert info["fps"] == 25.0 and len(info["frames"]) == 10
    assert (info["colorspace"], info["color_range"]) == (6, 1)  # tagged BT.601 (smpte170m), limited range
    flat = np.zeros((2, 32, 32, 3), np.uint8)
    flat[..., :] = (200, 30, 30)
    with VideoWriter(tmp_path / "flat.mp4", fps=10.0, size=(32, 32)) as writer:
        writer.write_batch(flat)
    for backend in ("decord", "opencv"):  # the colour matrix the readers assume is the one written
        got = open_video(tmp_path / "flat.mp4", backend=backend).get_frame(1)
        assert np.abs(got.astype(int) - flat[1]).max() <= 3


def test_odd_size_is_padded_at_the_right_and_bottom(tmp_path):
    frames = blocky_frames(6, 333, 201)
    with VideoWriter(tmp_path / "odd.mp4", fps=10.0, size=(333, 201)) as writer:
        writer.write_batch(frames)
    assert writer.encoded_size == (334, 202)
    info = probe(tmp_path / "odd.mp4")
    assert (info["codec"], info["pix_fmt"], info["size"]) == ("h264", "yuv420p", (334, 202))
    decoded = info["frames"].astype(np.int16)
    aligned = np.abs(decoded[:, :201, :333] - frames).mean()
    shifted = np.abs(decoded[:, 1:202, 1:334] - frames).mean()  # what a one-pixel offset would give
    assert aligned < 3.0 and shifted > 4 * aligned  # the input sits at the top-left: coordinates are exact
    # the extra column and row repeat the last ones
    assert np.abs(decoded[:, :201, 333] - decoded[:, :201, 332]).mean() < 3.0
    assert np.abs(decoded[:, 201, :333] - decoded[:, 200, :333]).mean() < 3.0


def test_render_video_reports_h264_and_sizes(tmp_path):
    frames, truth = synthetic_frames(num_frames=5, size=(333, 201))
    result = render_video(frames, truth, tmp_path / "annotated.mp4")
    assert (result.codec, result.warning, result.size, result.encoded_size) == ("h264", None, (333, 201), (334, 202))
    assert probe(result.path)["codec"] == "h264"


def test_without_an_encoder_mp4v_is_written_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(video_module, "h264_available", lambda: False)
    frames, truth = synthetic_frames(num_frames=4, size=(64, 48))
    with VideoWriter(tmp_path / "a.mp4", fps=10.0, size=(64, 48)) as writer:
        writer.write_batch(frames)
    assert (writer.codec, writer.warning) == ("mp4v", NO_H264_WARNING)
    assert probe(tmp_path / "a.mp4")["codec"] == "mpeg4"
    assert render_video(frames, truth, tmp_path / "b.mp4").warning == NO_H264_WARNING
    with pytest.raises(InputError) as err:
        VideoWriter(tmp_path / "c.mp4", fps=10.0, size=(64, 48), codec="h264")
    assert str(err.value) == "codec 'h264' is not available here: install PyAV (pip install av)"
    truth.save_npz(tmp_path / "tracks.npz")
    video = tmp_path / "in.mkv"
    with VideoWriter(video, fps=truth.fps, size=truth.size, codec="FFV1") as writer:
        writer.write_batch(frames)
    result = runner.invoke(app, ["render", str(video), str(tmp_path / "tracks.npz"), "-o", str(tmp_path / "r.mp4")])
    assert result.exit_code == 0, result.output
    assert f"warning: {NO_H264_WARNING}" in " ".join(result.output.split())
    assert "(mp4v)" in result.output


def test_h264_needs_an_mp4_like_container(tmp_path):
    with pytest.raises(InputError) as err:
        VideoWriter(tmp_path / "a.avi", fps=10.0, size=(64, 48), codec="h264")
    assert str(err.value) == "codec 'h264' needs a .mp4, .m4v, .mov, .mkv file, not 'a.avi'"


PLAY = """src => new Promise(resolve => {
  const v = document.createElement("video");
  v.muted = true;
  v.addEventListener("canplay", () => resolve(["canplay", v.videoWidth, v.videoHeight]));
  v.addEventListener("error", () => resolve(["error", v.error ? v.error.code : null]));
  setTimeout(() => resolve(["timeout", v.readyState]), 10000);
  v.src = src;
  document.body.append(v);
})"""


def test_chromium_plays_the_h264_output_and_not_mp4v(tmp_path, session, monkeypatch):  # noqa: F811
    frames, truth = synthetic_frames(num_frames=8, size=(333, 201))
    render_video(frames, truth, tmp_path / "h264.mp4")
    monkeypatch.setattr(video_module, "h264_available", lambda: False)
    render_video(frames, truth, tmp_path / "mp4v.mp4")
    (tmp_path / "blank.html").write_text("<!doctype html><title>video</title><body></body>")
    page = session.page
    page.goto((tmp_path / "blank.html").resolve().as_uri())
    assert page.evaluate(PLAY, (tmp_path / "h264.mp4").resolve().as_uri()) == ["canplay", 334, 202]
    # the same test fails on mp4v (MEDIA_ERR_SRC_NOT_SUPPORTED): it tells playable from not
    assert page.evaluate(PLAY, (tmp_path / "mp4v.mp4").resolve().as_uri()) == ["error", 4]


def _annotate(out: Path, tracks: Tracks) -> None:
    frames = np.zeros((TRACK_FRAMES, tracks.size[1], tracks.size[0], 3), np.uint8)
    render_video(frames, tracks, out / "annotated.mp4")


def test_viewer_plays_the_annotated_video_inline(tmp_path, session):  # noqa: F811
    out, tracks, _ = write_track_run(tmp_path)
    _annotate(out, tracks)
    page = session.open(build_site(out))
    assert page.is_visible("#annotated-video")
    assert page.get_attribute("#annotated-video", "src") == "annotated.mp4"
    assert page.text_content("#annotated-caption") == "annotated video: annotated.mp4 (h264)"
    page.wait_for_function("() => document.getElementById('annotated-video').readyState >= 3", timeout=10_000)
    assert page.eval_on_selector("#annotated-video", "v => [v.videoWidth, v.videoHeight, v.error]") == [128, 96, None]
    assert session.errors == []
    # from the key frames' folder the video is one folder up
    page = session.open(build_site(out / "keyframes"))
    assert page.get_attribute("#annotated-video", "src") == "../annotated.mp4"
    page.wait_for_function("() => document.getElementById('annotated-video').readyState >= 3", timeout=10_000)


def test_viewer_notes_an_mp4v_video_instead_of_playing_it(tmp_path, session, monkeypatch):  # noqa: F811
    monkeypatch.setattr(video_module, "h264_available", lambda: False)
    out, tracks, _ = write_track_run(tmp_path)
    _annotate(out, tracks)
    page = session.open(build_site(out))
    assert page.is_hidden("#annotated-video") and page.is_visible("#annotated-note")
    assert page.text_content("#annotated-note") == ("Browsers do not play mpeg4: re-render it with PyAV installed "
                                                    "(H.264).")


def test_writing_and_probing_print_nothing(tmp_path, capfd):
    frames, truth = synthetic_frames(num_frames=4, size=(65, 33))
    render_video(frames, truth, tmp_path / "a.mp4")
    (tmp_path / "notes.mkv").write_text("not a video\n")
    with pytest.raises(InputError):
        open_video(tmp_path / "notes.mkv", backend="opencv")
    open_video(tmp_path / "a.mp4", backend="opencv").get_frame(3)
    assert capfd.readouterr() == ("", "")  # neither libx264's banner nor FFmpeg's complaints reach the terminal
