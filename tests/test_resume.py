"""Checkpointed tracking: a run killed anywhere and resumed gives the uninterrupted run's tracks, bit for bit.

The SIGKILL tests run tests/resume_child.py as a separate process (the tiny model, a 12-frame 64 px
video, the fast preset, this process's thread count) and compare what the resumed process writes with
the same track run uninterrupted here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_image
from equivariant import write_lossless_video
from resume_child import MAP_FRAMES, QUERIES, run

import vidcorr
from vidcorr.errors import InputError
from vidcorr.io.atomic import partial_path
from vidcorr.method import checkpoint as resume

CHILD = Path(__file__).with_name("resume_child.py")
NUM_FRAMES = 12
# Queries on frames 4 and 7: the forward sweep locates frames 5..11, the backward one 6..0.
TOTAL = 7 + 7


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    base = random_image(64, 64, seed=3)
    path = tmp_path_factory.mktemp("resume") / "clip.avi"
    write_lossless_video(path, [np.roll(base, (2 * k, 3 * k), axis=(0, 1)) for k in range(NUM_FRAMES)])
    return path


@pytest.fixture(scope="module")
def reference(tiny, video):
    tracks, maps = run(tiny, video)
    assert sorted(maps) == sorted(MAP_FRAMES)
    return tracks, maps


def _child(video: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(CHILD), str(video), str(out), "--threads",
                             str(torch.get_num_threads()), *extra], env=env, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr


def _killed(process: subprocess.Popen) -> None:
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL


def _assert_equal_to(reference, result: dict) -> None:
    tracks, maps = reference
    assert np.array_equal(result["points"], tracks.points)
    assert np.array_equal(result["confidence"], tracks.confidence)
    assert np.array_equal(result["visible"], tracks.visible)
    assert result["map_frames"].tolist() == sorted(maps)
    for frame, expected in maps.items():
        assert np.array_equal(result[f"maps_{frame}"], expected)


def test_sigkill_at_a_random_frame_then_resume_equals_the_uninterrupted_run(video, reference, tmp_path):
    target = int(np.random.default_rng().integers(3, TOTAL - 1))  # a checkpoint (every 2 frames) exists by then
    checkpoint, progress = tmp_path / "ck", tmp_path / "progress"
    process = _child(video, tmp_path / "unused.npz", "--checkpoint", str(checkpoint), "--every", "2",
                     "--progress", str(progress), "--sleep", "0.1")
    deadline = time.monotonic() + 300
    while not (progress.exists() and progress.read_text() and int(progress.read_text()) >= target):
        assert process.poll() is None and time.monotonic() < deadline, f"the child ended before frame {target}"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    _killed(process)
    _, saved = resume.load_checkpoint(checkpoint)
    assert 2 <= saved.done < TOTAL and saved.done % 2 == 0, (target, saved.done)

    _finish(_child(video, tmp_path / "resumed.npz", "--checkpoint", str(checkpoint), "--every", "2"))
    result = np.load(tmp_path / "resumed.npz")
    _assert_equal_to(reference, result)
    assert int(result["fits"]) == 0  # the embeddings kept beside the checkpoint, never fitted again
    # Only the frames after the checkpoint were located, plus the map frames it had passed (replayed).
    assert int(result["located"]) == TOTAL - saved.done + len(saved.replay)


def test_sigkill_during_checkpoint_writes_then_resume_equals_the_uninterrupted_run(video, reference, tmp_path):
    checkpoint = tmp_path / "ck"
    args = ("--checkpoint", str(checkpoint), "--every", "2")
    # Killed half-way through writing the first checkpoint (right after fitting): nothing complete is left.
    _killed(_child(video, tmp_path / "unused.npz", *args, "--die-on-save", "1", "--die-how", "half"))
    assert partial_path(checkpoint).exists() and not checkpoint.exists()
    # Started afresh, then killed between writing its third checkpoint (at 4 frames) and renaming it.
    _killed(_child(video, tmp_path / "unused.npz", *args, "--die-on-save", "3", "--die-how", "rename"))
    assert partial_path(checkpoint).stat().st_size > checkpoint.stat().st_size * 0.5
    assert resume.load_checkpoint(checkpoint)[1].done == 2  # the previous checkpoint, untouched

    _finish(_child(video, tmp_path / "resumed.npz", *args))
    result = np.load(tmp_path / "resumed.npz")
    _assert_equal_to(reference, result)
    assert int(result["fits"]) == 0
    assert int(result["located"]) == TOTAL - 2
    assert not partial_path(checkpoint).exists()  # the stale temporary was overwritten and renamed


# ---------------------------------------------------------------------------------------- in process


class Stop(Exception):
    pass


def _interrupted(tiny, video, checkpoint: Path, at: int, **options) -> None:
    """Run with a checkpoint every 3 frames and stop it (an exception, as Ctrl-C would) after `at` frames."""
    seen = []

    def stop_after(frame, active, location):
        seen.append(frame)
        if len(seen) == at:
            raise Stop

    with pytest.raises(Stop):
        vidcorr.track(tiny, video, on_frame=stop_after, checkpoint=checkpoint, checkpoint_every=3, **options)


def test_interrupted_then_resumed_in_process_equals_uninterrupted_and_never_refits(tiny, video, reference,
                                                                                   tmp_path, monkeypatch):
    checkpoint = tmp_path / "ck"
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=3, lr=0.05, seed=0)
    _interrupted(tiny, video, checkpoint, 11, queries=QUERIES, cfg=cfg, return_maps=MAP_FRAMES)
    assert resume.load_checkpoint(checkpoint)[1].done == 9
    monkeypatch.setattr(sys.modules["vidcorr.method.track"], "fit_queries", lambda *a, **k: pytest.fail("fitted again"))
    tracks, maps = run(tiny, video, checkpoint, 3)
    assert np.array_equal(tracks.points, reference[0].points)
    assert np.array_equal(tracks.confidence, reference[0].confidence)
    assert sorted(maps) == sorted(reference[1])
    for frame in maps:
        assert np.array_equal(maps[frame], reference[1][frame])


def test_a_finished_checkpoint_returns_the_tracks_without_locating(tiny, video, reference, tmp_path):
    checkpoint = tmp_path / "ck"
    run(tiny, video, checkpoint, 5)
    located = []
    tracks, maps = run(tiny, video, checkpoint, 5, on_located=located.append)
    assert resume.load_checkpoint(checkpoint)[1].finished
    assert located == sorted(MAP_FRAMES)  # only the map frames, recomputed for their maps
    assert np.array_equal(tracks.points, reference[0].points)
    for frame in maps:
        assert np.array_equal(maps[frame], reference[1][frame])


def test_global_search_resumes_identically(tiny, video, tmp_path):
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=3, lr=0.05, seed=0)
    embeddings = vidcorr.fit_queries(tiny, video, QUERIES, cfg)
    options = dict(embeddings=embeddings, global_search=True, cfg=cfg, stride=2)
    uninterrupted = vidcorr.track(tiny, video, **options)
    checkpoint = tmp_path / "ck"
    _interrupted(tiny, video, checkpoint, 5, **options)
    _, saved = resume.load_checkpoint(checkpoint)
    assert saved.done == 3 and saved.previous_known.all()
    resumed = vidcorr.track(tiny, video, checkpoint=checkpoint, **options)
    assert np.array_equal(resumed.points, uninterrupted.points)
    assert np.array_equal(resumed.confidence, uninterrupted.confidence)
    # Other embeddings are other settings.
    other = vidcorr.fit_queries(tiny, video, QUERIES, cfg.replace(seed=1))
    with pytest.raises(InputError, match=r"with other settings \(embeddings '[0-9a-f]{64}' there, "):
        vidcorr.track(tiny, video, checkpoint=checkpoint, **{**options, "embeddings": other})


@pytest.fixture
def stopped_checkpoint(tiny, video, tmp_path) -> Path:
    checkpoint = tmp_path / "ck"
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=3, lr=0.05, seed=0)
    _interrupted(tiny, video, checkpoint, 4, queries=QUERIES, cfg=cfg)
    return checkpoint


@pytest.mark.parametrize(("change", "differs"), [
    ({"visibility_threshold": 0.6}, "visibility_threshold 0.5 there, 0.6 now"),
    ({"start": 1}, "start 0 there, 1 now"),
    ({"cfg_seed": 1}, "config.seed 0 there, 1 now"),
    ({"queries": QUERIES + [0, 1, 0]}, "queries [[4.0, 20.5, 30.5], [7.0, 40.5, 12.5], [4.0, 50.5, 50.5]] there, "
                                       "[[4.0, 21.5, 30.5], [7.0, 41.5, 12.5], [4.0, 51.5, 50.5]] now"),
])
def test_resuming_with_other_settings_is_refused_in_one_line(tiny, video, stopped_checkpoint, change, differs):
    options = {"queries": QUERIES, "cfg": vidcorr.Config.preset("fast", image_size=64, num_steps=3, lr=0.05, seed=0)}
    if "cfg_seed" in change:
        options["cfg"] = options["cfg"].replace(seed=change.pop("cfg_seed"))
    options.update(change)
    with pytest.raises(InputError) as err:
        vidcorr.track(tiny, video, checkpoint=stopped_checkpoint, **options)
    assert str(err.value) == (f"checkpoint {str(stopped_checkpoint)!r} was written by a run with other settings "
                              f"({differs}); resume with the same settings or delete it")


def test_a_checkpoint_of_another_video_is_refused(tiny, video, stopped_checkpoint, tmp_path):
    other = tmp_path / "other.avi"
    write_lossless_video(other, [random_image(64, 64, seed=k) for k in range(NUM_FRAMES)])
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=3, lr=0.05, seed=0)
    with pytest.raises(InputError, match=r"other settings \(video\.bytes \d+ there, \d+ now; video\.path "):
        vidcorr.track(tiny, other, QUERIES, cfg, checkpoint=stopped_checkpoint)


def test_corrupt_checkpoints_are_refused_naming_the_file(stopped_checkpoint):
    data = stopped_checkpoint.read_bytes()
    name = repr(str(stopped_checkpoint))
    fix = "delete it to track this video from the start"
    cases = [
        (data[:-100], f"checkpoint {name} is corrupt ({len(data) - 100 - 57} bytes of payload, the header says "
                      f"{len(data) - 57}); {fix}"),
        (data[:20], f"checkpoint {name} is corrupt (no vidcorr checkpoint header); {fix}"),
        (b"PK\x03\x04" + data[4:], f"checkpoint {name} is corrupt (no vidcorr checkpoint header); {fix}"),
        (data[:-1] + bytes([data[-1] ^ 1]), f"checkpoint {name} is corrupt (checksum mismatch); {fix}"),
        (data[:13] + (2).to_bytes(4, "little") + data[17:],
         f"checkpoint {name} has format version 2, this vidcorr reads version 1; {fix}"),
    ]
    for damaged, message in cases:
        stopped_checkpoint.write_bytes(damaged)
        with pytest.raises(InputError) as err:
            resume.load_checkpoint(stopped_checkpoint)
        assert str(err.value) == message


def test_lost_or_swapped_embeddings_file_is_refused(tiny, video, stopped_checkpoint):
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=3, lr=0.05, seed=0)
    side = resume.embeddings_path(stopped_checkpoint)
    other = vidcorr.fit_queries(tiny, video, QUERIES, cfg.replace(seed=5))
    other.save(side)
    with pytest.raises(InputError) as err:
        vidcorr.track(tiny, video, QUERIES, cfg, checkpoint=stopped_checkpoint)
    assert str(err.value) == (f"embeddings file {str(side)!r} is not the one checkpoint {str(stopped_checkpoint)!r} "
                              "was made with; delete both to track this video from the start")
    side.unlink()
    with pytest.raises(InputError, match="has lost its embeddings file"):
        vidcorr.track(tiny, video, QUERIES, cfg, checkpoint=stopped_checkpoint)
    resume.remove_checkpoint(stopped_checkpoint)
    assert list(stopped_checkpoint.parent.iterdir()) == []


# ------------------------------------------------------------------------------------------- units


def test_state_round_trips_through_the_file(tmp_path):
    state = resume.TrackState(
        sweep=resume.BACKWARD, position=3, done=10, previous_xy=np.array([[1.5, 2.25], [3.0, 4.0]]),
        previous_known=np.array([True, False]), points=np.arange(24, dtype=np.float64).reshape(6, 2, 2) / 3,
        confidence=np.linspace(0, 1, 12).reshape(6, 2), embeddings_sha256="ab" * 32,
        replay={2: (np.array([0, 1]), np.array([[0.5, 0.5], [7.5, 1.5]])), 9: (np.array([1]), None)})
    resume.save_checkpoint(tmp_path / "ck", state, {"a": [1, 2], "b": None})
    identity, loaded = resume.load_checkpoint(tmp_path / "ck")
    assert identity == {"a": [1, 2], "b": None}
    assert (loaded.sweep, loaded.position, loaded.done, loaded.embeddings_sha256) == (1, 3, 10, "ab" * 32)
    for name in ("previous_xy", "previous_known", "points", "confidence"):
        assert np.array_equal(getattr(loaded, name), getattr(state, name))
    assert sorted(loaded.replay) == [2, 9]
    assert loaded.replay[2][0].tolist() == [0, 1] and loaded.replay[2][1].tolist() == [[0.5, 0.5], [7.5, 1.5]]
    assert loaded.replay[9][0].tolist() == [1] and loaded.replay[9][1] is None
    assert resume.load_checkpoint(tmp_path / "missing") is None


def test_frames_per_checkpoint_is_about_a_minute_of_work():
    assert resume.frames_per_checkpoint(0.5) == 120
    assert resume.frames_per_checkpoint(7.0) == 9  # 60 / 7 = 8.57
    assert resume.frames_per_checkpoint(100.0) == 1
    assert resume.frames_per_checkpoint(0.0) == 1
    assert resume.frames_per_checkpoint(2.0, interval_s=10) == 5


def test_automatic_interval_saves_every_minute_at_the_measured_rate(tmp_path):
    now = [0.0]
    saver = resume.Checkpointer(tmp_path / "ck", {"x": 1}, every=None, clock=lambda: now[0])
    state = resume.TrackState(resume.FORWARD, 0, 0, np.zeros((1, 2)), np.ones(1, bool), np.zeros((40, 1, 2)),
                              np.zeros((40, 1)), "")
    saver.start_clock()
    done_at = []
    for _ in range(40):
        now[0] += 15.0  # 15 s a frame: a checkpoint every 4 frames
        state.done += 1
        before = saver.saves
        saver.frame_done(state)
        if saver.saves > before:
            done_at.append(state.done)
    assert done_at == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]


@pytest.mark.parametrize("every", [0, -3, 2.5, True])
def test_checkpoint_every_must_be_a_positive_whole_number(tmp_path, every):
    with pytest.raises(InputError) as err:
        resume.Checkpointer(tmp_path / "ck", {}, every)
    assert str(err.value) == f"checkpoint_every must be a whole number of frames >= 1, got {every!r}"


def test_checkpoint_every_without_a_checkpoint_is_refused(tiny, video):
    with pytest.raises(InputError) as err:
        vidcorr.track(tiny, video, QUERIES, checkpoint_every=5)
    assert str(err.value) == "checkpoint_every needs a checkpoint file to save to"
