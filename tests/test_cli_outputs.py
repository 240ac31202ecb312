"""Issue 16 through the CLI: --out reuse and --overwrite, checks before work, write failures, progress
off a terminal, --help, file modes, decoder noise."""

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video
from typer.testing import CliRunner

import vidcorr.io.video
import vidcorr.io.writer
import vidcorr.pipelines.match
import vidcorr_cli.common
import vidcorr_cli.track
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "2", "--image-size", "64", "--device", "cpu"]
FRAMES = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    base = random_image(48, 64, seed=4)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_lossless_video(path, [np.roll(base, 3 * k, axis=1) for k in range(FRAMES)], fps=12.0)
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Any model load fails the test: what it guards must be refused before any work."""
    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(vidcorr_cli.common, "load_model", load_model)


def _lines(result):
    return result.stderr.strip().splitlines()


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_rerunning_into_out_is_refused_before_any_work(clip, tmp_path, no_model):
    out = tmp_path / "out"
    out.mkdir()
    (out / "tracks.json").write_text("{}")
    result = runner.invoke(app, ["track", str(clip), "--points", "1,1", "-o", str(out), *TINY])
    assert result.exit_code == 2
    assert _lines(result) == [f"error: output folder '{out}' already exists; pass --overwrite to replace it"]
    assert sorted(p.name for p in out.iterdir()) == ["tracks.json"]


def test_overwrite_replaces_the_previous_run_whole_and_view_shows_only_the_new_one(clip, tmp_path):
    out = tmp_path / "out"
    first = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--keyframes", "2", "-o", str(out), *TINY])
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "embeddings.safetensors", "keyframes",
                                                     "tracks.csv", "tracks.json", "tracks.npz"]
    second = runner.invoke(app, ["track", str(clip), "--points", "10,10;30,20", "--no-video", "--keyframes", "1",
                                 "--overwrite", "-o", str(out), *TINY])
    assert second.exit_code == 0, second.output
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.safetensors", "keyframes", "tracks.csv",
                                                     "tracks.json", "tracks.npz"]
    index = json.loads((out / "keyframes" / "index.json").read_text())
    assert len(index["points"]) == 2 and [f["frame"] for f in index["frames"]] == [0]
    assert sorted(p.name for p in (out / "keyframes").iterdir()) == sorted(
        ["index.json", "frame000000.jpg", "frame000000_point000.png", "frame000000_point001.png"])
    assert _hidden(tmp_path) == []
    shown = runner.invoke(app, ["view", str(out), "--no-open"])
    assert shown.exit_code == 0, shown.output
    page = (out / "index.html").read_text()
    assert '"query_xy":[30' in page.replace(" ", "") and "frame000005.jpg" not in page


@pytest.mark.parametrize(("args", "message"), [
    (["--points", "1,1", "--visibility-threshold", "nan"],
     "error: --visibility-threshold must be a number in [0, 1], got nan"),
    (["--points", "1,1", "--visibility-threshold", "2"],
     "error: --visibility-threshold must be a number in [0, 1], got 2"),
    (["--points", "1,1", "--ref-frame", "-1"], "error: --ref-frame -1 is negative: frames are numbered from 0"),
    (["--points", "1,1", "--start", "-1"], "error: --start -1 is negative: frames are numbered from 0"),
    (["--embeddings", "e.safetensors", "--steps", "3"],
     "error: --steps applies to fitting; it has no effect with --embeddings"),
    (["--embeddings", "e.safetensors", "--restarts", "2"],
     "error: --restarts applies to fitting; it has no effect with --embeddings"),
    (["--embeddings", "e.safetensors", "--init-prompt", "a dog"],
     "error: --init-prompt applies to fitting; it has no effect with --embeddings"),
])
def test_bad_track_arguments_are_refused_before_any_work(clip, tmp_path, no_model, args, message):
    out = tmp_path / "out"
    tiny = ["--model", "tiny", "--image-size", "64"] if "--embeddings" in args else TINY
    result = runner.invoke(app, ["track", str(clip), *args, "-o", str(out), *tiny])
    assert result.exit_code == 2
    assert _lines(result) == [message]
    assert not out.exists()


def test_an_image_given_to_track_is_called_an_image(tmp_path, no_model):
    cv2.imwrite(str(tmp_path / "photo.jpg"), random_image(32, 32))
    result = runner.invoke(app, ["track", str(tmp_path / "photo.jpg"), "--points", "1,1", "-o", str(tmp_path / "o"),
                                 *TINY])
    assert result.exit_code == 2
    assert _lines(result) == [f"error: '{tmp_path / 'photo.jpg'}' is a JPEG image, not a video"]


def test_fit_refuses_an_existing_output_before_fitting_and_replaces_it_with_overwrite(clip, tmp_path, monkeypatch):
    target = tmp_path / "e.safetensors"
    target.write_text("an earlier file")
    (tmp_path / "adir").mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(vidcorr_cli.common, "load_model", lambda *a, **k: pytest.fail("fitted before checking -o"))
        result = runner.invoke(app, ["fit", str(clip), "--points", "1,1", "-o", str(target), *TINY])
        assert result.exit_code == 2
        assert _lines(result) == [f"error: output file '{target}' already exists; pass --overwrite to replace it"]
        result = runner.invoke(app, ["fit", str(clip), "--points", "1,1", "-o", str(tmp_path / "adir"), *TINY])
        assert _lines(result) == [f"error: output file '{tmp_path / 'adir'}' is a folder"]
    result = runner.invoke(app, ["fit", str(clip), "--points", "1,1", "-o", str(target), "--overwrite", *TINY])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[8:9] == b"{"  # a safetensors header now, not the old text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "e.safetensors"]


def test_match_refuses_an_existing_out_and_save_embeddings_before_any_work(tmp_path, no_model):
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), random_image(40, 40))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "matches.json").write_text("{}")
    args = ["match", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--points", "5,5", *TINY]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "o")])
    assert _lines(result) == [f"error: output folder '{tmp_path / 'o'}' already exists; pass --overwrite to "
                              "replace it"]
    (tmp_path / "e.safetensors").write_text("x")
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "new"), "--save-embeddings",
                                 str(tmp_path / "e.safetensors")])
    assert result.exit_code == 2 and _lines(result) == [
        f"error: output file '{tmp_path / 'e.safetensors'}' already exists; pass --overwrite to replace it"]


def test_a_failing_write_names_the_final_file_and_leaves_nothing(clip, tmp_path, monkeypatch):
    from PIL import Image

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--keyframes", "1", "-o", str(out), *TINY])
    assert result.exit_code == 2
    jpeg = out / "keyframes" / "frame000000.jpg"
    assert _lines(result)[-1] == f"error: cannot write '{jpeg}': No space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_video_encoder_that_silently_drops_frames_is_caught(clip, tmp_path, monkeypatch):
    original = vidcorr.io.writer.VideoWriter.write

    def drop_the_last(self, frame):
        if self.frames_written == FRAMES - 1:  # counted as written, never encoded: a full disk under OpenCV
            self.frames_written += 1
            return
        original(self, frame)

    monkeypatch.setattr(vidcorr.io.writer.VideoWriter, "write", drop_the_last)
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "-o", str(out), *TINY])
    assert result.exit_code == 2
    assert _lines(result)[-1] == (f"error: cannot write '{out / 'annotated.mp4'}': the encoded video holds "
                                  f"{FRAMES - 1} readable frames of {FRAMES} (is the disk full?)")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@contextlib.contextmanager
def _small_tmpfs(path, size):
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.skipif(shutil.which("mount") is None or os.geteuid() != 0, reason="needs root and mount")
def test_a_really_full_disk_leaves_nothing_and_names_the_file(clip, tmp_path):
    with _small_tmpfs(tmp_path / "disk", "1m") as disk:
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as handle:
            while True:  # fill it, then free a little: a few kB for the run
                handle.write(b"\0" * 4096)
                handle.flush()
        os.truncate(filler, max(0, filler.stat().st_size - 12 * 1024))
        out = disk / "out"
        result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--keyframes", "2", "-o", str(out),
                                     *TINY])
        assert result.exit_code == 2, result.output
        assert re.fullmatch(rf"error: cannot write '{re.escape(str(out))}/[^']+': .+", _lines(result)[-1])
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_progress_lines_off_a_terminal(clip, tmp_path):
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--keyframes", "1", "-o",
                                 str(tmp_path / "out"), *TINY])
    assert result.exit_code == 0, result.output
    lines = _lines(result)[1:]  # after the tiny model's warning
    assert lines[:2] == ["fitting embeddings (steps): 1/2 (50 %)", lines[1]]
    assert re.fullmatch(r"fitting embeddings \(steps\): 2/2 \(100 %\), [\d.]+/s", lines[1])
    tracking = [line for line in lines if line.startswith("tracking")]
    assert tracking[0] == f"tracking (frames): 1/{FRAMES - 1} (20 %)" and len(tracking) == FRAMES - 1
    assert re.fullmatch(rf"tracking \(frames\): {FRAMES - 1}/{FRAMES - 1} \(100 %\), [\d.]+/s", tracking[-1])
    assert f"writing annotated.mp4 (frames): {FRAMES}/{FRAMES} (100 %)" in lines
    assert lines[-1] == "writing key frames: 1/1 (100 %)"
    result = runner.invoke(app, ["fit", str(clip), "--points", "10,10", "-o", str(tmp_path / "e.safetensors"), *TINY])
    assert _lines(result)[1] == "fitting embeddings (steps): 1/2 (50 %)"


@pytest.mark.parametrize(("command", "default"), [("track", "VIDEO_vidcorr; a batch: vidcorr_batch"),
                                                  ("match", "SRC-TRG_vidcorr].")])
def test_help_shows_defaults_as_text_and_flags_without_a_value(command, default):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = result.output
    assert f"Output folder [default: {default}" in text
    assert "<bool>" not in text
    flag = "--no-video" if command == "track" else "--visualize"
    row = next(line for line in text.splitlines() if line.lstrip("│ ").startswith(flag))
    assert re.search(rf"{flag}\s+(Skip annotated|Also write vis)", row), row
    assert re.search(r"--overwrite\s+Replace an existing output", text)
    assert re.search(r"--steps\s+<int range>", text)  # options that take a value still say which


def test_every_output_gets_the_same_mode(clip, tmp_path):
    previous = os.umask(0o027)
    try:
        result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--keyframes", "1", "-o",
                                     str(tmp_path / "out"), *TINY])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*")
             if p.is_file()}
    assert "out/embeddings.safetensors" in modes and len(modes) > 6
    assert set(modes.values()) == {0o640}, modes


def test_decoder_noise_is_silenced_and_the_one_line_error_stands_alone(tmp_path, capfd, monkeypatch):
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(12):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = bytearray((tmp_path / "clip.mp4").read_bytes())
    data[len(data) // 4: len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)  # damage the frames
    (tmp_path / "bad.mp4").write_bytes(data)

    def read_all(backend):
        with contextlib.suppress(vidcorr.InputError):
            with vidcorr.io.video.open_video(tmp_path / "bad.mp4", backend=backend) as reader:
                for _ in reader.iter_frames():
                    pass

    if vidcorr.io.video.decord_available():  # in this process; OpenCV's path is checked through the CLI below
        read_all("decord")
        assert capfd.readouterr().err == ""
    with monkeypatch.context() as patch:  # the control: the same reads do print without the silencing
        patch.setattr(vidcorr.io.video, "quiet_native_stderr", contextlib.nullcontext)
        read_all("opencv")
        assert "[mpeg4 @" in capfd.readouterr().err
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("VIDCORR_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "vidcorr_cli", "track", "bad.mp4", "--points", "1,1", "-o", "o",
                             "--keyframes", "0", "--no-video", *TINY], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2
    for backend in ("decord", "opencv"):  # the other reader, through the CLI's own set-up
        code = (f"import vidcorr_cli.app, vidcorr.io.video as v; vidcorr_cli.app.quiet_warnings(); "
                f"r = v.open_video('bad.mp4', backend='{backend}'); [b for b in r.iter_frames()]")
        if backend == "decord" and not vidcorr.io.video.decord_available():
            continue
        other = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=300)
        # decord may refuse the file when opening it (its probe read fails) or at a later frame: either way
        # vidcorr's own error is all that reaches stderr after the traceback, with no decoder noise.
        last = other.stderr.strip().splitlines()[-1]
        assert "mpeg4 @" not in other.stderr and re.match(
            r"vidcorr\.errors\.InputError: (cannot decode|video backend 'decord' cannot decode)", last), last
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("warning: --model tiny",
                                                                                    "fitting embeddings"))]
    assert len(errors) == 1 and re.fullmatch(r"error: cannot decode frame \d+ of video 'bad.mp4' \(it announces 12 "
                                             r"frames\): the file may be truncated or corrupt", errors[0]), errors


def test_an_interrupt_after_the_output_is_in_place_says_so_and_exits_0(clip, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vidcorr_cli.track, "Table", interrupt)  # the summary table comes after the output is in place
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--no-video", "--keyframes", "0",
                                 "-o", str(out), *TINY])
    assert result.exit_code == 0  # the work was done: the status says so, as the message does
    assert _lines(result)[-1] == f"interrupted after the run finished: {out} is complete"
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.safetensors", "tracks.csv", "tracks.json",
                                                     "tracks.npz"]


def test_an_interrupt_between_two_outputs_exits_130_naming_the_one_in_place(tmp_path, monkeypatch):
    """`match --save-embeddings` writes its folder, then the embeddings file: an interrupt between them leaves the
    first whole and the second absent, and the command has not finished: 130, and the one line says which is there."""
    from PIL import Image

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vidcorr.pipelines.match, "staged_file", interrupt)
    image = tmp_path / "a.png"
    Image.fromarray(random_image(48, 64)).save(image)
    out, embeddings = tmp_path / "m", tmp_path / "e.safetensors"
    result = runner.invoke(app, ["match", str(image), str(image), "--points", "10,10", "-o", str(out),
                                 "--save-embeddings", str(embeddings), *TINY])
    assert result.exit_code == 130
    assert _lines(result)[-1] == f"error: interrupted after {out} was written whole"
    assert out.is_dir() and not embeddings.exists()


def test_render_stages_its_file_and_refuses_an_existing_one(clip, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--no-video", "--keyframes", "0",
                                 "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    video = tmp_path / "a.mp4"
    video.write_text("an earlier file")
    result = runner.invoke(app, ["render", str(clip), str(out / "tracks.npz"), "-o", str(video)])
    assert result.exit_code == 2
    assert _lines(result) == [f"error: output file '{video}' already exists; pass --overwrite to replace it"]
    result = runner.invoke(app, ["render", str(clip), str(out / "tracks.npz"), "-o", str(video), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "run"]


def test_an_interrupted_match_leaves_no_output(tmp_path, monkeypatch):
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), random_image(40, 40))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vidcorr.pipelines.match, "write_image", interrupt)  # after matches.json and .csv are written
    result = runner.invoke(app, ["match", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--points", "5,5",
                                 "-o", str(tmp_path / "m"), *TINY])
    assert result.exit_code == 130
    assert _lines(result)[-1] == "error: interrupted; no complete-looking output was left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
