"""Video reading (decord, OpenCV, in-memory) and atomic writing, on small synthetic files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcorr.errors import InputError
from vidcorr.io.reader import VideoInfo
from vidcorr.io.video import decord_available, open_video
from vidcorr.io.writer import VideoWriter, default_codec, h264_available

FILE_BACKENDS = [
    pytest.param("decord", marks=pytest.mark.skipif(not decord_available(), reason="decord not installed")),
    "opencv",
]
AVAILABLE_BACKENDS = (["decord"] if decord_available() else []) + ["opencv"]
NUM_FRAMES, WIDTH, HEIGHT, FPS = 24, 64, 48, 25.0


def random_frames(num_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def smooth_frames(num_frames: int, width: int, height: int) -> np.ndarray:
    """Moving sinusoids: content a lossy codec keeps well."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = [
        np.stack(
            [
                128 + 100 * np.sin((x + 2 * t) / 9.0),
                128 + 100 * np.cos((y - t) / 7.0),
                128 + 60 * np.sin((x + y) / 11.0 + t / 5),
            ],
            axis=-1,
        )
        for t in range(num_frames)
    ]
    return np.clip(frames, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def lossless(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 24-frame 64x48 FFV1 (lossless) .mkv of random frames at 25 fps, and the frames."""
    path = tmp_path_factory.mktemp("video") / "lossless.mkv"
    frames = random_frames(NUM_FRAMES, WIDTH, HEIGHT)
    with VideoWriter(path, fps=FPS, size=(WIDTH, HEIGHT), codec="FFV1") as writer:
        writer.write_batch(frames)
    return path, frames


def read_all(reader, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    batches = list(reader.iter_frames(**kwargs))
    return np.concatenate([b.indices for b in batches]), np.concatenate([b.frames for b in batches])


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_info_read_back(lossless, backend):
    path, _ = lossless
    reader = open_video(path, backend=backend)
    assert reader.backend == backend
    assert reader.info == VideoInfo(num_frames=NUM_FRAMES, fps=pytest.approx(FPS, abs=0.01), width=64, height=48)
    assert reader.info.size == (64, 48)
    assert len(reader) == NUM_FRAMES


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_fractional_fps_and_lossy_codec(tmp_path, backend):
    frames = smooth_frames(12, WIDTH, HEIGHT)
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, fps=29.97, size=(WIDTH, HEIGHT)) as writer:
        writer.write_batch(frames)
    reader = open_video(path, backend=backend)
    assert reader.info.num_frames == 12
    assert reader.info.fps == pytest.approx(29.97, abs=0.01)
    assert reader.info.size == (WIDTH, HEIGHT)
    _, got = read_all(reader)
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert np.abs(got.astype(np.int16) - frames).mean() < 6.0  # mp4v/H.264 at OpenCV's bitrate


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_stream_equals_written_exactly(lossless, backend):
    path, frames = lossless
    reader = open_video(path, backend=backend)
    batches = list(reader.iter_frames(batch_size=5))
    assert [len(b.indices) for b in batches] == [5, 5, 5, 5, 4]
    assert all(b.frames.shape[1:] == (HEIGHT, WIDTH, 3) and b.frames.dtype == np.uint8 for b in batches)
    indices, got = read_all(reader, batch_size=5)
    np.testing.assert_array_equal(indices, np.arange(NUM_FRAMES))
    np.testing.assert_array_equal(got, frames)  # RGB order, bit-exact


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_start_end_stride_and_random_access(lossless, backend):
    path, frames = lossless
    reader = open_video(path, backend=backend)
    indices, got = read_all(reader, start=3, end=20, stride=4, batch_size=2)
    np.testing.assert_array_equal(indices, [3, 7, 11, 15, 19])
    np.testing.assert_array_equal(got, frames[[3, 7, 11, 15, 19]])
    indices, _ = read_all(reader, start=22)
    np.testing.assert_array_equal(indices, [22, 23])
    indices, _ = read_all(reader, start=0, end=24, stride=23)
    np.testing.assert_array_equal(indices, [0, 23])
    for t in (17, 2, 23, 0, 1, 12):  # backwards, forwards, far and near
        np.testing.assert_array_equal(reader.get_frame(t), frames[t])
    # random access in the middle of a stream does not disturb the stream
    stream = reader.iter_frames(batch_size=4)
    first = next(stream)
    np.testing.assert_array_equal(reader.get_frame(20), frames[20])
    second = next(stream)
    np.testing.assert_array_equal(first.frames, frames[0:4])
    np.testing.assert_array_equal(second.frames, frames[4:8])


def test_seeking_in_a_lossy_file_is_frame_accurate(tmp_path):
    path = tmp_path / "gop.mp4"  # mp4v: a keyframe every 12 frames, P-frames between
    with VideoWriter(path, fps=FPS, size=(32, 32), codec="mp4v") as writer:
        writer.write_batch(smooth_frames(90, 32, 32))
    readers = [open_video(path, backend=b) for b in AVAILABLE_BACKENDS]
    sequential = [read_all(reader)[1] for reader in readers]
    for reader, frames in zip(readers, sequential, strict=True):
        for t in (80, 5, 89, 40, 41, 0):  # far jumps seek, backwards and forwards
            np.testing.assert_array_equal(reader.get_frame(t), frames[t])
        _, strided = read_all(reader, start=7, stride=70)
        np.testing.assert_array_equal(strided, frames[[7, 77]])
    for frames in sequential[1:]:
        np.testing.assert_array_equal(frames, sequential[0])  # the backends decode alike


@pytest.mark.parametrize("backend", [*FILE_BACKENDS, "memory"])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": -1}, "start frame -1 is out of range 0..23 (the video has 24 frames)"),
        ({"start": 24}, "start frame 24 is out of range 0..23 (the video has 24 frames)"),
        ({"start": 5, "end": 5}, "end frame 5 is out of range 6..24 (start is 5, the video has 24 frames)"),
        ({"end": 25}, "end frame 25 is out of range 1..24 (start is 0, the video has 24 frames)"),
        ({"stride": 0}, "stride 0 is invalid: it must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size 0 is invalid: it must be an integer >= 1"),
        ({"start": 1.5}, "start frame 1.5 is not an integer"),
    ],
)
def test_range_errors(lossless, backend, kwargs, message):
    path, frames = lossless
    reader = open_video(frames, fps=FPS) if backend == "memory" else open_video(path, backend=backend)
    with pytest.raises(InputError) as err:
        reader.iter_frames(**kwargs)  # raised at the call, before any decoding
    assert str(err.value) == message
    with pytest.raises(InputError) as err:
        reader.get_frame(24)
    assert str(err.value) == "frame 24 is out of range 0..23 (the video has 24 frames)"


@pytest.mark.parametrize("backend", ["auto", *FILE_BACKENDS])
def test_bad_files(tmp_path, backend):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(InputError) as err:
        open_video(missing, backend=backend)
    assert str(err.value) == f"video {str(missing)!r} does not exist"

    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(InputError) as err:
        open_video(text, backend=backend)
    assert str(err.value) == f"cannot read video {str(text)!r}: no decodable video stream"

    empty = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, (WIDTH, HEIGHT))
    writer.release()  # a valid container with a video stream and no frames
    with pytest.raises(InputError) as err:
        open_video(empty, backend=backend)
    assert str(err.value) == f"video {str(empty)!r} has no frames"

    with pytest.raises(InputError) as err:  # a folder is read as a frame folder (tests/test_frames.py)
        open_video(tmp_path, backend=backend)
    assert str(err.value) == (f"frame folder {str(tmp_path)!r} holds 'empty.avi', which is not a frame: "
                              "a frame folder holds only .jpg, .jpeg, .png files")


def test_errors_print_nothing(tmp_path, capfd):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    for backend in ("auto", "opencv"):
        with pytest.raises(InputError):
            open_video(text, backend=backend)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # FFmpeg's and decord's own complaints are silenced


def test_backend_choice(lossless):
    path, _ = lossless
    assert open_video(path).backend == ("decord" if decord_available() else "opencv")
    with pytest.raises(InputError) as err:
        open_video(path, backend="ffmpeg")
    assert str(err.value) == "unknown video backend 'ffmpeg': choose 'auto', 'decord' or 'opencv'"
    with pytest.raises(InputError) as err:
        open_video(path, fps=10)
    assert str(err.value) == (f"fps=10 applies to frame folders and frames in memory only: video {str(path)!r} "
                              "has its own frame rate")
    reader = open_video(path, backend="opencv")
    assert open_video(reader) is reader


@pytest.mark.parametrize("container", ["list", "array", "generator"])
def test_in_memory_frames(container):
    frames = random_frames(7, 20, 10)
    source = {"list": list(frames), "array": frames, "generator": (f for f in frames)}[container]
    reader = open_video(source)
    assert reader.backend == "memory"
    assert reader.info == VideoInfo(num_frames=7, fps=30.0, width=20, height=10)
    indices, got = read_all(reader, start=1, stride=2, batch_size=2)
    np.testing.assert_array_equal(indices, [1, 3, 5])
    np.testing.assert_array_equal(got, frames[[1, 3, 5]])
    np.testing.assert_array_equal(reader.get_frame(6), frames[6])
    assert open_video(list(frames), fps=12.5).info.fps == 12.5


def test_in_memory_errors():
    frames = random_frames(3, 20, 10)
    cases = [
        ([], "video '<in-memory frames>' has no frames"),
        ([frames[0], frames[1].astype(np.float32)],
         "frames must be HxWx3 uint8 arrays; frame 1 has shape (10, 20, 3) and dtype float32"),
        ([frames[0], frames[1][:, :15]], "frame 1 is 15x10 but frame 0 is 20x10: all frames must have one size"),
        (frames[..., 0], "frames must be a (T, H, W, 3) uint8 array; got shape (3, 10, 20) and dtype uint8"),
    ]
    for source, message in cases:
        with pytest.raises(InputError) as err:
            open_video(source)
        assert str(err.value) == message
    with pytest.raises(InputError) as err:
        open_video(frames, fps=0)
    assert str(err.value) == "fps 0 is invalid: it must be a finite number > 0"


def test_default_codec():
    expected = "h264" if h264_available() else "mp4v"
    assert default_codec("out.mp4") == default_codec("OUT.MOV") == expected
    assert default_codec("out.avi") == "MJPG"
    with pytest.raises(InputError) as err:
        default_codec("out.gif")
    assert str(err.value) == "unsupported video suffix '.gif' in out.gif: use one of .mp4, .m4v, .mov, .mkv, .avi"


def test_writer_reports_codec_and_writes_all_frames(tmp_path):
    frames = smooth_frames(5, WIDTH, HEIGHT)
    with VideoWriter(tmp_path / "out.mp4", fps=FPS, size=(WIDTH, HEIGHT)) as writer:
        writer.write_batch(frames)
    assert writer.codec == default_codec("out.mp4")
    assert writer.frames_written == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary left over
    assert open_video(tmp_path / "out.mp4", backend="opencv").info.num_frames == 5


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_nothing(tmp_path, exception):
    path = tmp_path / "out.mp4"
    with pytest.raises(exception), VideoWriter(path, fps=FPS, size=(WIDTH, HEIGHT)) as writer:
        writer.write(smooth_frames(1, WIDTH, HEIGHT)[0])
        raise exception()
    assert list(tmp_path.iterdir()) == []


def test_writer_errors(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="no frames were written"), VideoWriter(path, FPS, (WIDTH, HEIGHT)):
        pass
    with pytest.raises(InputError) as err, VideoWriter(path, FPS, (WIDTH, HEIGHT)) as writer:
        writer.write(np.zeros((HEIGHT, WIDTH + 1, 3), np.uint8))
    assert str(err.value) == "frame has shape (48, 65, 3) and dtype uint8; this writer takes (48, 64, 3) uint8 RGB"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError) as err:
        VideoWriter(tmp_path / "no" / "out.mp4", FPS, (WIDTH, HEIGHT)).__enter__()
    assert str(err.value) == f"output folder {str(tmp_path / 'no')!r} does not exist"


def test_odd_size_is_padded_not_cropped(tmp_path):
    frames = random_frames(3, 65, 47, seed=1)
    path = tmp_path / "odd.mkv"
    with VideoWriter(path, fps=FPS, size=(65, 47), codec="FFV1") as writer:
        writer.write_batch(frames)
    assert writer.encoded_size == (66, 48)
    reader = open_video(path, backend="opencv")
    assert reader.info.size == (66, 48)
    _, got = read_all(reader)
    np.testing.assert_array_equal(got[:, :47, :65], frames)  # every input pixel kept
    np.testing.assert_array_equal(got[:, :47, 65], frames[:, :, 64])  # the padding repeats the edge
