"""Frame folders as videos: natural order, exact pixels, streaming, DAVIS layout, errors, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import vidcorr.io.frames as frames_module
from vidcorr.errors import InputError
from vidcorr.io.frames import FrameFolderReader, natural_key
from vidcorr.io.images import read_image
from vidcorr.io.reader import VideoInfo
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]


def random_frames(num_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def write_folder(folder: Path, frames: np.ndarray, name: str = "frame_{}.png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, frame in enumerate(frames):
        paths.append(folder / name.format(t))
        Image.fromarray(frame).save(paths[-1])
    return paths


def read_all(reader, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    batches = list(reader.iter_frames(**kwargs))
    return np.concatenate([b.indices for b in batches]), np.concatenate([b.frames for b in batches])


def test_natural_order():
    names = ["frame_10.png", "frame_9.png", "Frame_1.png", "frame_100.png", "frame_0.png", "frame_2.jpg"]
    assert sorted(names, key=natural_key) == [
        "frame_0.png", "Frame_1.png", "frame_2.jpg", "frame_9.png", "frame_10.png", "frame_100.png"]
    # names equal but for zero-padding: a total, stable order (by the name itself)
    assert sorted(["f_01.png", "f_1.png", "f_001.png"], key=natural_key) == ["f_001.png", "f_01.png", "f_1.png"]


def test_folder_reads_in_natural_order_with_exact_pixels(tmp_path):
    frames = random_frames(12, 20, 10)
    write_folder(tmp_path / "clip", frames)  # frame_0 .. frame_11: lexical order would put 10, 11 after 1
    reader = open_video(tmp_path / "clip")
    assert isinstance(reader, FrameFolderReader) and reader.backend == "frames"
    assert reader.info == VideoInfo(num_frames=12, fps=30.0, width=20, height=10)
    assert reader.frame_names[:4] == ["frame_0.png", "frame_1.png", "frame_2.png", "frame_3.png"]
    assert reader.frame_names[-3:] == ["frame_9.png", "frame_10.png", "frame_11.png"]
    indices, got = read_all(reader, batch_size=5)
    np.testing.assert_array_equal(indices, np.arange(12))
    np.testing.assert_array_equal(got, frames)  # PNG: bit-exact, RGB order
    indices, got = read_all(reader, start=1, end=11, stride=3, batch_size=2)
    np.testing.assert_array_equal(indices, [1, 4, 7, 10])
    np.testing.assert_array_equal(got, frames[[1, 4, 7, 10]])
    np.testing.assert_array_equal(reader.get_frame(10), frames[10])
    assert open_video(tmp_path / "clip", fps=12.5).info.fps == 12.5


def test_streaming_decodes_only_the_batch(tmp_path, monkeypatch):
    write_folder(tmp_path / "clip", random_frames(40, 16, 8))
    decoded = []
    original = frames_module.ImageOps.exif_transpose
    monkeypatch.setattr(frames_module.ImageOps, "exif_transpose",
                        lambda img: decoded.append(Path(img.filename).name) or original(img))
    reader = open_video(tmp_path / "clip")
    assert decoded == []  # opening reads the headers only
    stream = reader.iter_frames(batch_size=4)
    next(stream)
    assert decoded == [f"frame_{t}.png" for t in range(4)]
    next(stream)
    assert len(decoded) == 8


def test_davis_sequence_folder(tmp_path):
    root = tmp_path / "DAVIS" / "JPEGImages" / "480p"
    frames = random_frames(5, 32, 24, seed=3)
    paths = write_folder(root / "bear", frames, name="{:05d}.jpg")
    write_folder(root / "car", frames[:2], name="{:05d}.jpg")
    reader = open_video(root / "bear")
    assert reader.info.num_frames == 5 and reader.info.size == (32, 24)
    assert reader.frame_names == ["00000.jpg", "00001.jpg", "00002.jpg", "00003.jpg", "00004.jpg"]
    expected = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])  # JPEG: PIL's own decode
    np.testing.assert_array_equal(read_all(reader)[1], expected)
    with pytest.raises(InputError) as err:
        open_video(root)
    assert str(err.value) == (f"frame folder {str(root)!r} holds folders, not frames: give one of them "
                              f"(e.g. {str(root / 'bear')!r})")


def test_exif_orientation_is_applied(tmp_path):
    frame = random_frames(1, 30, 20)[0]
    folder = tmp_path / "phone"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    for t in range(2):
        Image.fromarray(frame).save(folder / f"{t}.png", exif=exif)
    reader = open_video(folder)
    assert reader.info.size == (20, 30)  # displayed: width and height swapped
    np.testing.assert_array_equal(reader.get_frame(1), np.rot90(frame, k=-1))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "frame folder '{d}' has no frames (.jpg, .jpeg, .png files)"),
        (lambda d: (d / "notes.txt").write_text("x"),
         "frame folder '{d}' holds 'notes.txt', which is not a frame: a frame folder holds only .jpg, .jpeg, .png "
         "files"),
        (lambda d: (d / "sub").mkdir(),
         "frame folder '{d}' holds the folder 'sub': a frame folder holds only .jpg, .jpeg, .png files"),
        (lambda d: Image.new("RGB", (8, 6)).save(d / "frame_7.png"),
         "frame 'frame_7.png' is 8x6 but frame 'frame_0.png' is 8x4: all frames of '{d}' must have one size"),
        (lambda d: (d / "frame_5.png").write_bytes(b"not a png"),
         "cannot read frame 'frame_5.png' of '{d}': not a JPEG/PNG image"),
        (lambda d: (d / "frame_3.png").symlink_to(d.parent / "moved" / "frame_3.png"),
         "frame folder '{d}' holds 'frame_3.png', a broken link (to '{d.parent}/moved/frame_3.png', which does not "
         "exist)"),
    ],
)
def test_bad_folders(tmp_path, make, message):
    folder = tmp_path / "clip"
    folder.mkdir()
    make(folder)
    if "no frames" not in message:
        write_folder(folder, random_frames(3, 8, 4))
    with pytest.raises(InputError) as err:
        open_video(folder)
    assert str(err.value) == message.format(d=folder)


def test_a_link_to_a_frame_is_read_as_the_frame(tmp_path):
    frames = random_frames(2, 8, 4)
    paths = write_folder(tmp_path / "store", frames)
    folder = tmp_path / "clip"
    folder.mkdir()
    for t, path in enumerate(paths):
        (folder / f"{t}.png").symlink_to(path)
    np.testing.assert_array_equal(read_all(open_video(folder))[1], frames)


def test_16_bit_pngs_keep_the_high_byte_of_each_value(tmp_path):
    # Hand-computed: value // 256. Pillow alone clips 16-bit grey to 255 (a white frame) and keeps the high
    # byte of 16-bit colour; both now give the same frame.
    grey16 = np.array([[0, 255, 256, 4660], [32767, 32768, 65280, 65535]], np.uint16)
    expected = np.array([[0, 0, 1, 18], [127, 128, 255, 255]], np.uint8)
    folder = tmp_path / "grey"
    folder.mkdir()
    Image.fromarray(grey16).save(folder / "0.png")  # Pillow writes mode I;16 as a 16-bit greyscale PNG
    with Image.open(folder / "0.png") as img:
        assert img.mode.startswith("I")
    np.testing.assert_array_equal(open_video(folder).get_frame(0), np.repeat(expected[..., None], 3, axis=2))
    colour = tmp_path / "colour"
    colour.mkdir()
    rgb16 = np.stack([grey16, grey16[::-1], np.full_like(grey16, 513)], axis=2)
    assert cv2.imwrite(str(colour / "0.png"), rgb16[..., ::-1])  # OpenCV writes 16-bit colour PNGs (BGR)
    np.testing.assert_array_equal(open_video(colour).get_frame(0),
                                  np.stack([expected, expected[::-1], np.full_like(expected, 2)], axis=2))
    np.testing.assert_array_equal(read_image(folder / "0.png"), np.repeat(expected[..., None], 3, axis=2))


def test_hidden_files_are_skipped_and_fps_is_checked(tmp_path):
    folder = tmp_path / "clip"
    write_folder(folder, random_frames(3, 8, 4))
    (folder / ".DS_Store").write_bytes(b"\0\1")
    assert open_video(folder).info.num_frames == 3
    with pytest.raises(InputError) as err:
        open_video(folder, fps=0)
    assert str(err.value) == "fps 0 is invalid: it must be a finite number > 0"


def test_a_frame_truncated_after_opening_is_a_decode_error(tmp_path):
    folder = tmp_path / "clip"
    paths = write_folder(folder, random_frames(3, 64, 48), name="{}.jpg")
    reader = open_video(folder)
    paths[2].write_bytes(paths[2].read_bytes()[:200])
    np.testing.assert_array_equal(reader.get_frame(0).shape, (48, 64, 3))
    with pytest.raises(InputError) as err:
        reader.get_frame(2)
    assert str(err.value) == f"cannot decode frame 2 ('2.jpg') of {str(folder)!r}: the file is truncated or corrupt"


@pytest.fixture(scope="module")
def folder_clip(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    base = np.repeat(np.repeat(rng.integers(0, 256, (12, 16, 3)), 4, axis=0), 4, axis=1).astype(np.uint8)
    folder = tmp_path_factory.mktemp("frames") / "seq"
    write_folder(folder, np.stack([np.roll(base, 2 * t, axis=1) for t in range(4)]), name="img{}.png")
    return folder


def test_cli_track_on_a_frame_folder_records_its_fps(folder_clip, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(folder_clip), "--points", "20.5,20.5", "--fps", "12.5",
                                 "--keyframes", "0", "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    tracks = Tracks.load_npz(out / "tracks.npz")
    assert (tracks.num_frames, tracks.size, tracks.fps) == (4, (64, 48), 12.5)
    saved = json.loads((out / "tracks.json").read_text())
    assert saved["fps"] == 12.5 and saved["meta"]["video"] == str(folder_clip)
    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 12.5
        assert sum(1 for _ in container.decode(stream)) == 4
    # render re-draws on the folder at the tracks' own rate when --fps is not given
    result = runner.invoke(app, ["render", str(folder_clip), str(out / "tracks.npz"), "-o", str(tmp_path / "r.mp4")])
    assert result.exit_code == 0, result.output
    assert "4 frames at 12.5 fps (h264)" in result.output
    assert open_video(tmp_path / "r.mp4").info.fps == pytest.approx(12.5)


def test_cli_folder_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["track", str(empty), "--points", "1,1", "-o", str(tmp_path / "o"), *TINY])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: frame folder {str(empty)!r} has no frames (.jpg, .jpeg, .png files)"
    assert not (tmp_path / "o").exists()
    video = tmp_path / "v.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode(None))
    result = runner.invoke(app, ["fit", str(video), "--points", "1,1", "--fps", "10", "-o", str(tmp_path / "e.st"),
                                 *TINY])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: fps=10.0 applies to frame folders and frames in memory only: video "
                                     f"{str(video)!r} has its own frame rate")
