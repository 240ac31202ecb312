"""Data flows once: a track run decodes each frame at most twice (the sweeps, the render), the query and key
frames are kept when first decoded, and a batch opens each video once to plan it and once to track it."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video

import vidcorr
from vidcorr.io import video as video_module
from vidcorr.pipelines import batch as batch_module
from vidcorr.pipelines.batch import BatchOptions, prepare_batch, run_batch
from vidcorr.pipelines.options import TrackOptions

FAST = {"preset": "fast", "overrides": {"num_steps": 2, "image_size": 64}}


@pytest.fixture
def counted(monkeypatch):
    """Counts, per (video file name, frame index), the frames the file readers decode, and opens per file."""
    decodes: collections.Counter = collections.Counter()
    opens: collections.Counter = collections.Counter()
    for cls in (video_module.DecordReader, video_module.OpenCVReader):
        def read(self, indices, _original=cls._read_batch):
            for t in indices.tolist():
                decodes[(Path(self.name).name, t)] += 1
            return _original(self, indices)

        def init(self, path, *args, _original=cls.__init__, **kwargs):
            opens[Path(path).name] += 1
            return _original(self, path, *args, **kwargs)

        monkeypatch.setattr(cls, "_read_batch", read)
        monkeypatch.setattr(cls, "__init__", init)
    return decodes, opens


def _clip(path: Path, frames: int, seed: int = 0) -> Path:
    base = random_image(48, 64, seed=seed)
    write_lossless_video(path, [np.roll(base, 2 * t, axis=1) for t in range(frames)])
    return path


def test_a_track_run_decodes_each_frame_at_most_twice(tiny, counted, tmp_path):
    decodes, opens = counted
    clip = _clip(tmp_path / "clip.avi", 12)
    result = vidcorr.track_to_folder(tiny, clip, tmp_path / "out", queries=[[4, 20.5, 20.5], [4, 40.5, 30.5]],
                                     keyframes=3, **FAST)
    assert (tmp_path / "out" / "annotated.mp4").is_file() and result.tracks.num_frames == 12
    key_frames = {0, 6, 11}  # 3 evenly spaced over 0..11
    kept = key_frames | {4}  # and the query frame
    # The query frame: decoded once, for the fit (the tracker, the reference maps and the render reuse it). Key
    # frames: once, by a sweep (the key-frame pictures and the render reuse them). Every other frame: once by a
    # sweep and once by the render.
    assert {t: decodes[("clip.avi", t)] for t in range(12)} == {t: 1 if t in kept else 2 for t in range(12)}
    assert opens == {"clip.avi": 1}
    # Before this change: 3.2 decodes per frame (fit, two sweeps, reference maps again, render, key frames).


def test_a_batch_opens_each_video_once_to_plan_and_once_to_track(tiny, counted, tmp_path, monkeypatch):
    decodes, opens = counted
    clips = [_clip(tmp_path / f"{name}.avi", n, seed=k) for k, (name, n) in enumerate((("a", 5), ("b", 7)))]
    expanded: list = []
    original = batch_module.expand_inputs
    monkeypatch.setattr(batch_module, "expand_inputs", lambda *a, **k: expanded.append(a) or original(*a, **k))
    job = prepare_batch([str(tmp_path)], tmp_path / "out", points=np.array([[1, 20.5, 20.5]]),
                        options=TrackOptions(video_out=False, keyframes=0), run=BatchOptions(), **FAST)
    assert [v.frames for v in job.videos] == [5, 7]
    assert opens == {"a.avi": 1, "b.avi": 1} and len(expanded) == 1 and not decodes  # planned: headers only
    outcome = run_batch(tiny, job, fsync=False)
    assert outcome.done == 2 and outcome.failed == []
    assert opens == {"a.avi": 2, "b.avi": 2}
    assert max(decodes.values()) == 1 and len(decodes) == 12  # without a render, each frame once
    assert all(Path(c).exists() for c in clips)
