"""Batch tracking (`vidcorr.track_many`, `vidcorr track VIDEO...`): shards merged equal one process, a batch killed
anywhere and resumed equals an uninterrupted one, failures stay local, finished videos are skipped, changed
settings are refused.

The subprocess tests run tests/batch_child.py (the library) or `python -m vidcorr_cli` (the shards) with the
tiny model on three short 64x48 videos, and compare with the same batch run in this process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from batch_child import QUERIES, run
from conftest import random_image
from equivariant import write_lossless_video
from typer.testing import CliRunner

from vidcorr.io.atomic import partial_path
from vidcorr.io.tracks import Tracks
from vidcorr.method import checkpoint as resume
from vidcorr.pipelines.batch import STAGING_DIR, VIDEO_RECORDS, checkpoint_path, read_records
from vidcorr.runs.shards import assign_shards
from vidcorr_cli.app import app
from vidcorr_cli.track import is_batch

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "2", "--image-size", "64", "--device", "cpu"]
LENGTHS = {"a": 5, "b": 8, "c": 4}
NAMES = sorted(LENGTHS)
# Queries on frames 1 and 2: per video, forward frames 2.. and 3.., backward 1..0 and 0: T - 2 + 2 located frames.
LOCATED = {name: (n - 2) + 2 for name, n in LENGTHS.items()}
CHILD = Path(__file__).with_name("batch_child.py")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    paths = {}
    for k, (name, frames) in enumerate(sorted(LENGTHS.items())):
        base = random_image(48, 64, seed=10 + k)
        paths[name] = folder / f"{name}.avi"
        write_lossless_video(paths[name], [np.roll(base, (k + 1) * j, axis=1) for j in range(frames)])
    return paths


@pytest.fixture(scope="module")
def reference(tiny, clips, tmp_path_factory) -> Path:
    """The batch uninterrupted, in this process (the library, as the children run it)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    outcome = run(tiny, clips.values(), out)
    assert (outcome.done, outcome.skipped, outcome.failed) == (3, 0, [])
    return out


def _env() -> dict[str, str]:
    root = str(Path(__file__).parent.parent)
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(CHILD.parent), root, os.environ.get("PYTHONPATH", "")])}


def _child(out: Path, clips: dict[str, Path], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), str(out), *(str(clips[n]) for n in NAMES), *extra],
                            env=_env(), stderr=subprocess.PIPE, text=True)


def _killed(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, stderr


def _assert_same_tracks(a: Path, b: Path, names=NAMES) -> None:
    for name in names:
        x, y = Tracks.load_npz(a / name / "tracks.npz"), Tracks.load_npz(b / name / "tracks.npz")
        assert np.array_equal(x.points, y.points), name
        assert np.array_equal(x.confidence, y.confidence), name
        assert np.array_equal(x.visible, y.visible), name
        assert np.array_equal(x.queries, y.queries), name


def _index(out: Path) -> dict:
    return json.loads((out / "batch.json").read_text())


def _statuses(out: Path) -> dict[str, tuple[str, str | None, int, int]]:
    return {Path(e["video"]).name: (e["status"], e["output"], e["frames"], e["points"])
            for e in _index(out)["entries"]}


# ------------------------------------------------------------------------------------------- shards


def test_two_shards_in_two_processes_merged_equal_one_process(clips, tmp_path):
    videos = [str(clips[n]) for n in NAMES]
    args = ["--points", "20.5,20.5;40.5,30.5", "--ref-frame", "1", "--no-video", "--keyframes", "2", *TINY]
    whole = tmp_path / "whole"
    result = runner.invoke(app, ["track", *videos, "-o", str(whole), *args])
    assert result.exit_code == 0, result.output
    assert "3 done, 0 skipped (done before), 0 failed, of 3 videos" in result.stdout

    sharded = tmp_path / "sharded"
    command = [sys.executable, "-m", "vidcorr_cli", "track", *videos, "-o", str(sharded), *args]
    shards = [subprocess.Popen([*command, "--shard", f"{i}/2"], env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in shards:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    # Balanced by frames: b (8 frames) alone, a (5) and c (4) together.
    assert assign_shards([LENGTHS[n] for n in NAMES], 2) == [[1], [0, 2]]
    by_file = {p.name: [Path(r.video).name for r in VIDEO_RECORDS.read(p)]
               for p in VIDEO_RECORDS.results_files(sharded)}
    assert by_file == {"tracked-shard0of2.jsonl": ["b.avi"], "tracked-shard1of2.jsonl": ["a.avi", "c.avi"]}

    # Re-run without --shard: nothing is computed again, the index covers the whole batch.
    result = runner.invoke(app, ["track", *videos, "-o", str(sharded), *args])
    assert result.exit_code == 0, result.output
    assert "0 done, 3 skipped (done before), 0 failed, of 3 videos" in result.stdout
    _assert_same_tracks(whole, sharded)
    for name in NAMES:  # every output file of a video, value by value
        for file in ("tracks.csv", "tracks.json"):
            assert (whole / name / file).read_text().replace(str(whole), "") == \
                (sharded / name / file).read_text().replace(str(sharded), ""), (name, file)
    expected = {f"{n}.avi": ("done", n, LENGTHS[n], 2) for n in NAMES}
    assert _statuses(whole) == _statuses(sharded) == expected
    assert (_index(sharded)["done"], _index(sharded)["failed"], _index(sharded)["pending"]) == (3, 0, 0)
    assert not (sharded / STAGING_DIR).exists()


# ------------------------------------------------------------------------------------------- kills


def test_sigkill_at_a_random_frame_then_resume_equals_the_uninterrupted_batch(tiny, clips, reference, tmp_path):
    total = sum(LOCATED.values())
    target = int(np.random.default_rng().integers(3, total - 1))
    out, progress = tmp_path / "out", tmp_path / "progress"
    process = _child(out, clips, "--progress", str(progress), "--sleep", "0.1")
    deadline = time.monotonic() + 300
    while not (progress.exists() and progress.read_text() and int(progress.read_text()) >= target):
        assert process.poll() is None and time.monotonic() < deadline, f"the child ended before frame {target}"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    _killed(process)
    finished_before = {Path(v).name for v, r in read_records(out).items() if r.status == "done"}
    in_progress = [n for n in NAMES if checkpoint_path(out, n).exists()]
    assert len(in_progress) <= 1 and not {f"{n}.avi" for n in in_progress} & finished_before

    outcome = run(tiny, clips.values(), out)
    assert outcome.skipped == len(finished_before) and outcome.done == 3 - len(finished_before)
    _assert_same_tracks(reference, out)
    assert _statuses(out) == _statuses(reference)
    assert not (out / STAGING_DIR).exists()  # every checkpoint removed after its completion record


def test_sigkill_during_checkpoint_writes_then_resume_equals_the_uninterrupted_batch(tiny, clips, reference,
                                                                                     tmp_path):
    out = tmp_path / "out"
    checkpoint = checkpoint_path(out, "a")
    # Killed half-way through writing the first checkpoint of video a (right after fitting).
    _killed(_child(out, clips, "--die-on-save", "1", "--die-how", "half"))
    assert partial_path(checkpoint).exists() and not checkpoint.exists()
    # Started afresh, then killed between writing its third checkpoint (at 4 frames) and renaming it.
    _killed(_child(out, clips, "--die-on-save", "3", "--die-how", "rename"))
    assert resume.load_checkpoint(checkpoint)[1].done == 2  # the previous checkpoint, untouched
    assert read_records(out) == {}

    steps = {"n": 0}
    outcome = run(tiny, clips.values(), out, on_located=lambda: steps.__setitem__("n", steps["n"] + 1))
    assert (outcome.done, outcome.skipped, outcome.failed) == (3, 0, [])
    # Video a resumed at its checkpoint (2 frames done: one progress step reaches 2), not from frame 0.
    assert steps["n"] == sum(LOCATED.values()) - 1
    _assert_same_tracks(reference, out)
    assert not (out / STAGING_DIR).exists()


# ------------------------------------------------------------------------------------------- failures


@pytest.fixture
def with_corrupt(clips, tmp_path) -> tuple[list[str], Path]:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    return [str(clips["a"]), str(bad), str(clips["c"])], bad


def _points_file(tmp_path: Path) -> Path:
    """batch_child's QUERIES as a plain t,x,y points file: applied to every video of a batch."""
    path = tmp_path / "points.csv"
    path.write_text("t,x,y\n" + "".join(f"{t:g},{x},{y}\n" for t, x, y in QUERIES))
    return path


def test_a_corrupt_video_fails_alone_and_a_rerun_skips_the_done_ones(with_corrupt, reference, tmp_path):
    videos, bad = with_corrupt
    out = tmp_path / "out"
    args = ["--points-file", str(_points_file(tmp_path)), "--no-video", "--keyframes", "0", *TINY]
    result = runner.invoke(app, ["track", *videos, "-o", str(out), *args])
    assert result.exit_code == 1, result.output
    assert "2 done, 0 skipped (done before), 1 failed, of 3 videos" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert errors[-2].startswith(f"failed: {bad}: cannot read video '{bad}'")
    assert errors[-1] == (f"error: 1 of 3 videos failed (listed above and in {out / 'batch.json'}); re-run the "
                          "same command to retry them")
    statuses = _statuses(out)
    assert statuses["broken.mp4"][:2] == ("failed", None)
    assert statuses["a.avi"] == ("done", "a", 5, 2) and statuses["c.avi"] == ("done", "c", 4, 2)
    entry = next(e for e in _index(out)["entries"] if e["status"] == "failed")
    assert entry["error"].startswith(f"cannot read video '{bad}'") and "\n" not in entry["error"]
    _assert_same_tracks(reference, out, names=["a", "c"])
    assert not (out / "broken").exists()

    # Re-run: the done videos are skipped (nothing computed), the failed one is tried again.
    result = runner.invoke(app, ["track", *videos, "-o", str(out), *args])
    assert result.exit_code == 1
    assert "0 done, 2 skipped (done before), 1 failed, of 3 videos" in result.stdout
    bad.unlink()
    result = runner.invoke(app, ["track", *videos[::2], "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert "0 done, 2 skipped (done before), 0 failed, of 2 videos" in result.stdout


def _page_data(page: Path) -> dict:
    block = re.search(r'<script type="application/json" id="vidcorr-data">(.*?)</script>',
                      page.read_text(encoding="utf-8"), re.S)
    return json.loads(block.group(1))


def test_view_lists_a_batch_and_opens_each_video(with_corrupt, tmp_path):
    # Before: `vidcorr view` on a batch failed ("expected a pairs index version 1 with a 'pairs' list"), since the
    # batch's index and the pairs' index were both called index.json.
    videos, bad = with_corrupt
    out = tmp_path / "out"
    args = ["--points-file", str(_points_file(tmp_path)), "--no-video", "--keyframes", "1", *TINY]
    assert runner.invoke(app, ["track", *videos, "-o", str(out), *args]).exit_code == 1
    result = runner.invoke(app, ["view", str(out), "--no-open"])
    assert result.exit_code == 0, result.output
    data = _page_data(out / "index.html")
    rows = {Path(v["video"]).name: (v["status"], v["page"], v["frames"]) for v in data["videos"]}
    assert rows == {"a.avi": ("done", "a/index.html", 5), "broken.mp4": ("failed", None, 0),
                    "c.avi": ("done", "c/index.html", 4)}
    for name, frames in (("a", 5), ("c", 4)):  # each video's own page, over its key frames
        tracks = _page_data(out / name / "index.html")["tracks"]
        assert len(tracks["rows"]["frames"]) == frames and len(tracks["points"]) == 2


def test_resuming_with_other_settings_is_refused_in_one_line(clips, tmp_path):
    out = tmp_path / "out"
    args = ["--points", "20.5,20.5", "--ref-frame", "1", "--no-video", "--keyframes", "0"]
    videos = [str(clips["c"]), str(clips["a"])]
    assert runner.invoke(app, ["track", *videos, "-o", str(out), *args, *TINY]).exit_code == 0
    result = runner.invoke(app, ["track", *videos, "-o", str(out), *args, *TINY, "--stride", "2"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {out} holds a run with other settings (stride 1 there, 2 now); resume it with the same options or "
        "choose another --out")
    result = runner.invoke(app, ["track", *videos, "-o", str(out), "--points", "21.5,20.5", "--ref-frame", "1",
                                 "--no-video", "--keyframes", "0", *TINY])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {out} holds video '{clips['c']}' tracked with other points; resume it with the same points or "
        "choose another --out")


def test_a_points_file_with_a_video_column_gives_each_video_its_queries(clips, tmp_path):
    points = tmp_path / "points.csv"
    points.write_text("video,t,x,y\nc.avi,1,10.5,12.5\na,0,30.5,20.5\na,3,50.5,40.5\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clips["a"]), str(clips["c"]), "--points-file", str(points), "-o",
                                 str(out), "--no-video", "--keyframes", "0", *TINY])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(Tracks.load_npz(out / "a" / "tracks.npz").queries, [[0, 30.5, 20.5], [3, 50.5, 40.5]])
    np.testing.assert_array_equal(Tracks.load_npz(out / "c" / "tracks.npz").queries, [[1, 10.5, 12.5]])
    assert _statuses(out) == {"a.avi": ("done", "a", 5, 2), "c.avi": ("done", "c", 4, 1)}


def test_one_plain_video_is_not_a_batch_but_folders_globs_and_batch_options_are(clips, tmp_path):
    video = str(clips["a"])
    assert not is_batch([video], None, None, None, False)
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "00001.png").write_bytes(b"x")
    assert not is_batch([str(tmp_path / "frames")], None, None, None, False)  # a frame folder is one video
    assert is_batch([str(clips["a"].parent)], None, None, None, False)  # a folder of videos
    assert is_batch([str(clips["a"].parent / "*.avi")], None, None, None, False)
    assert is_batch([video, str(clips["c"])], None, None, None, False)
    assert is_batch([video], tmp_path / "list.txt", None, None, False)
    assert is_batch([video], None, "0/2", None, False)
    assert is_batch([video], None, None, 10, False)
    assert is_batch([video], None, None, None, True)
