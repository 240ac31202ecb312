"""A tiny-model batch (`vidcorr.track_many`) as its own process, for the kill-and-resume tests (tests/test_batch.py).

    python tests/batch_child.py OUT VIDEO... [--progress FILE] [--sleep S] [--die-on-save I --die-how rename|half]
                                             [--report]

--progress: after each located frame, the count so far over the batch is written there (the test polls it to
SIGKILL this process at a chosen frame). --die-on-save I: SIGKILL itself inside the I-th checkpoint save of the
process (tests/resume_child.py's hooks). --report: print the outcome (videos done, failed, left to another
process) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

QUERIES = np.array([[1, 20.5, 20.5], [2, 40.5, 30.5]])
CONFIG = dict(image_size=64, num_steps=2)  # = the CLI's --preset fast --steps 2 --image-size 64
EVERY = 2


def run(ldm, videos, out, on_located=None, **options):
    """The batch every test process runs; returns the BatchOutcome."""
    import vidcorr

    seen = {"n": 0}

    def progress(update):
        if update.video is not None and update.video_done > seen.get(update.video, 0):
            seen[update.video] = update.video_done
            if on_located is not None:
                on_located()

    return vidcorr.track_many(ldm, [str(v) for v in videos], out, points=QUERIES, preset="fast", overrides=CONFIG,
                              checkpoint_every=EVERY, video_out=False, keyframes=0, progress=progress, **options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--progress")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--die-on-save", type=int)
    parser.add_argument("--die-how", choices=("rename", "half"))
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()

    import torch
    from resume_child import _die_inside_saves

    import vidcorr

    torch.set_num_threads(1)
    if args.die_on_save is not None:
        _die_inside_saves(args.die_on_save, args.die_how)
    located = {"n": 0}

    def on_located():
        located["n"] += 1
        if args.progress:
            Path(args.progress).write_text(str(located["n"]))
        time.sleep(args.sleep)

    outcome = run(vidcorr.LDM.tiny(seed=0), args.videos, args.out, on_located)
    if args.report:
        print(json.dumps({"done": outcome.done, "skipped": outcome.skipped, "failed": outcome.failed,
                          "elsewhere": outcome.elsewhere}))


if __name__ == "__main__":
    main()
