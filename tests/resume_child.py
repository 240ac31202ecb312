"""A tiny-model track run as its own process, for the kill-and-resume tests (tests/test_resume.py).

    python tests/resume_child.py VIDEO OUT.npz --threads N [--checkpoint CK --every K] [--progress FILE]
        [--sleep S] [--die-on-save I --die-how rename|half]

Writes OUT.npz (points, confidence, visible, the maps of MAP_FRAMES, and `fits`: how many times it fitted
embeddings) only when the track finishes. --progress: after each located frame, the count so far is
written there (the test polls it to SIGKILL this process at a chosen frame). --die-on-save I: SIGKILL
itself inside the I-th checkpoint save (1 = the one right after fitting), either between writing the
temporary file and renaming it (rename) or after writing half of the temporary (half).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import numpy as np

QUERIES = np.array([[4, 20.5, 30.5], [7, 40.5, 12.5], [4, 50.5, 50.5]])
MAP_FRAMES = frozenset({2, 9})
CONFIG = dict(image_size=64, num_steps=3, lr=0.05, seed=0)


def run(ldm, video, checkpoint=None, every=None, on_located=None):
    """The track every test process runs; returns (Tracks, {frame: maps (M, L, S, S)})."""
    import vidcorr

    maps = {}

    def on_frame(frame, active, location):
        if location.maps is not None:
            maps[int(frame)] = location.maps.numpy().copy()
        if on_located is not None:
            on_located(frame)

    tracks = vidcorr.track(ldm, video, QUERIES, vidcorr.Config.preset("fast", **CONFIG), return_maps=MAP_FRAMES,
                           on_frame=on_frame, checkpoint=checkpoint, checkpoint_every=every)
    return tracks, maps


def _die_inside_saves(save_number: int, how: str) -> None:
    from vidcorr.method import checkpoint as resume

    saves = {"n": 0}
    write, replace = resume._write_durably, resume._replace

    def killing_write(path, data):
        saves["n"] += 1
        if saves["n"] == save_number and how == "half":
            with open(path, "wb") as handle:
                handle.write(data[:len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        write(path, data)

    def killing_replace(src, dst):
        if saves["n"] == save_number and how == "rename":
            os.kill(os.getpid(), signal.SIGKILL)
        replace(src, dst)

    resume._write_durably, resume._replace = killing_write, killing_replace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--checkpoint")
    parser.add_argument("--every", type=int)
    parser.add_argument("--progress")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--die-on-save", type=int)
    parser.add_argument("--die-how", choices=("rename", "half"))
    args = parser.parse_args()

    import importlib

    import torch

    import vidcorr

    track_module = importlib.import_module("vidcorr.method.track")  # the attribute vidcorr.track is the function

    torch.set_num_threads(args.threads)
    fits = {"n": 0}
    fit_queries = track_module.fit_queries

    def counting_fit(*a, **k):
        fits["n"] += 1
        return fit_queries(*a, **k)

    track_module.fit_queries = counting_fit
    if args.die_on_save is not None:
        _die_inside_saves(args.die_on_save, args.die_how)
    located = {"n": 0}

    def on_located(frame):
        located["n"] += 1
        if args.progress:
            Path(args.progress).write_text(str(located["n"]))
        time.sleep(args.sleep)

    tracks, maps = run(vidcorr.LDM.tiny(seed=0), args.video, args.checkpoint, args.every, on_located)
    np.savez(args.out, points=tracks.points, confidence=tracks.confidence, visible=tracks.visible,
             fits=fits["n"], located=located["n"], map_frames=np.array(sorted(maps)),
             **{f"maps_{f}": m for f, m in maps.items()})


if __name__ == "__main__":
    main()
