"""Signals at several points of a real (tiny-model) `vidcorr track` run: the output is complete or absent.

Each run is held at a stage by the test-only hook in vidcorr/_testhooks.py (VIDCORR_TEST_PAUSE_AT), so the
signal lands inside that stage with its outputs half-written, whatever the machine's speed.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video

TINY = ["--model", "tiny", "--preset", "fast", "--steps", "2", "--image-size", "64", "--device", "cpu"]
INTERRUPTED = "error: interrupted; no complete-looking output was left behind"
RUN_FILES = ["annotated.mp4", "embeddings.safetensors", "keyframes", "tracks.csv", "tracks.json", "tracks.npz"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    base = random_image(48, 64, seed=4)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_lossless_video(path, [np.roll(base, 3 * k, axis=1) for k in range(6)], fps=12.0)
    return path


def _env(pause: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    env.pop("VIDCORR_DEBUG", None)
    env.pop("VIDCORR_TEST_PAUSE_AT", None)
    if pause is not None:
        env["VIDCORR_TEST_PAUSE_AT"] = pause
    return env


def _track(clip, out, *extra):
    return [sys.executable, "-m", "vidcorr_cli", "track", str(clip), "--points", "10,10;30,20", "--keyframes", "2",
            "-o", str(out), *TINY, *extra]


def _run_until(command, stage, marker, cwd):
    """Start `command` held at `stage`; return the process once it is there."""
    process = subprocess.Popen(command, cwd=cwd, env=_env(f"{stage}:{marker}"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before reaching {stage}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the run never reached {stage}")
        time.sleep(0.05)
    return process


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# Each stage gets a signal and each signal several stages (the overwrite test below adds SIGINT while the
# video is written); every run is a separate process, so the matrix is kept short.
@pytest.mark.parametrize(("stage", "signum", "code"), [
    ("fit", signal.SIGINT, 130), ("track", signal.SIGTERM, 143), ("render", signal.SIGTERM, 143),
    ("keyframes", signal.SIGINT, 130), ("keyframes", signal.SIGTERM, 143)])
def test_a_signal_leaves_no_output_and_no_staging_folder(clip, tmp_path, stage, signum, code):
    work = tmp_path / "work"
    work.mkdir()
    process = _run_until(_track(clip, work / "out"), stage, tmp_path / "marker", cwd=tmp_path)
    # Held mid-stage: while writing, the outputs exist only in the hidden staging folder.
    staging = [f".out.partial-{socket.gethostname()}-{process.pid}"] if stage in ("render", "keyframes") else []
    assert _listing(work) == staging
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == INTERRUPTED
    assert _listing(work) == []  # neither --out nor a hidden partial folder


def test_an_interrupted_overwrite_keeps_the_previous_run_whole(clip, tmp_path):
    out = tmp_path / "out"
    first = subprocess.run(_track(clip, out), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    process = _run_until(_track(clip, out, "--overwrite", "--keyframes", "1"), "render", tmp_path / "marker",
                         cwd=tmp_path)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == INTERRUPTED
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _listing(tmp_path) == ["marker", "out"]


def test_sigkill_leaves_only_a_hidden_partial_folder_that_the_next_run_removes(clip, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    process = _run_until(_track(clip, work / "out"), "keyframes", tmp_path / "marker", cwd=tmp_path)
    process.kill()
    process.communicate(timeout=60)
    assert _listing(work) == [f".out.partial-{socket.gethostname()}-{process.pid}"]  # nothing complete-looking
    again = subprocess.run(_track(clip, work / "out"), cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert _listing(work) == ["out"] and _listing(work / "out") == RUN_FILES


@pytest.mark.parametrize(("signum", "batch"), [(signal.SIGINT, False), (signal.SIGTERM, False),
                                               (signal.SIGINT, True)])
def test_a_signal_after_the_outputs_are_complete_exits_0_and_says_so(clip, tmp_path, signum, batch):
    """Held where the command has put every output in place (before its summary): the work is done, so the
    exit status is 0 and the one line says the output is complete, never an error."""
    work = tmp_path / "work"
    work.mkdir()
    command = _track(clip, work / "out", *(["--batch"] if batch else []))
    process = _run_until(command, "complete", tmp_path / "marker", cwd=tmp_path)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    written = work / "out" / "clip" if batch else work / "out"
    assert stderr.strip().splitlines()[-1] == f"interrupted after the run finished: {written} is complete"
    assert _listing(written) == RUN_FILES
