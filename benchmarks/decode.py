"""How many times does `track_to_folder` decode each frame, and what does it cost? Before and after.

    python -m benchmarks.decode [--frames 300] [--size 1280x720] [--before PATH] [--json decode.json]
    python -m benchmarks.decode --quick [--before PATH]      # 12 frames at 160x120, one repeat: checks the harness

Writes a synthetic clip (lossless FFV1 in AVI, so decoding costs what a real clip's does) and tracks it with
the tiny model (`fast` preset, 2 fit steps, image size 64: the model is cheap, so the decoding shows), with
the default outputs (annotated.mp4, tracks, embeddings, 8 key frames) and two points on one query frame in
the middle of the clip (a forward and a backward sweep). Each run is a fresh process, timed whole, and
counts the frames its readers decode (per frame index) by wrapping the file readers' batch decoder.

`--before PATH` runs the same job against another checkout of vidcorr (e.g. `git worktree add /tmp/before
e57b56c`, the commit before decode-once) in alternation with this one: before, after, before, after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import collections, json, sys, time
from pathlib import Path
import importlib
import vidcorr
packaged = (Path(vidcorr.__file__).parent / "io").is_dir()  # a checkout from before the packages has video.py
video_module = importlib.import_module("vidcorr.io.video" if packaged else "vidcorr.video")

counts = collections.Counter()
for cls in (video_module.DecordReader, video_module.OpenCVReader):
    def read(self, indices, _original=cls._read_batch):
        counts.update(indices.tolist())
        return _original(self, indices)
    cls._read_batch = read
clip, out, frames = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
sx, sy = float(sys.argv[4]) / 1280, float(sys.argv[5]) / 720  # the points sit where they do on a 1280x720 clip
ldm = vidcorr.LDM.tiny(seed=0)
began = time.perf_counter()
vidcorr.track_to_folder(ldm, clip, out, queries=[[frames // 2, 100.5 * sx, 100.5 * sy],
                                                   [frames // 2, 300.5 * sx, 200.5 * sy]],
                        preset="fast", overrides={"num_steps": 2, "image_size": 64})
took = time.perf_counter() - began
print(json.dumps({"seconds": took, "decoded": sum(counts.values()), "max_per_frame": max(counts.values()),
                  "frames": frames}))
"""


def write_clip(path: Path, frames: int, width: int, height: int) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width + frames * 2, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, (width, height))
    for t in range(frames):
        writer.write(np.ascontiguousarray(base[:, 2 * t:2 * t + width]))
    writer.release()


def run(checkout: Path, clip: Path, out: Path, frames: int, size: tuple[int, int]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(clip), str(out), str(frames), *map(str, size)],
                          env=env, capture_output=True, text=True, cwd=checkout)
    if done.returncode:
        raise SystemExit(f"the run in {checkout} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - began
    return result


QUICK = {"frames": 12, "size": "160x120", "repeats": 1}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print its lines and return (and optionally write) the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--before", type=Path, help="another checkout to compare against")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help=f"defaults become --frames {QUICK['frames']} --size {QUICK['size']} --repeats 1 (seconds)")
    parser.add_argument("--json", type=Path)
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        parser.set_defaults(**QUICK)  # defaults only: an option given beside --quick still wins
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    results: dict[str, list[dict]] = {"after": [], "before": []}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        write_clip(clip, args.frames, width, height)
        for k in range(args.repeats):
            runs = [("before", args.before)] if args.before else []
            for label, checkout in [*runs, ("after", ROOT)]:
                results[label].append(run(checkout, clip, Path(tmp) / f"{label}{k}", args.frames,
                                          (width, height)))
    report = {"frames": args.frames, "size": [width, height], **{k: v for k, v in results.items() if v}}
    for label in ("before", "after"):
        runs = results[label]
        if runs:
            best = min(r["seconds"] for r in runs)
            print(f"{label:>6}: {runs[0]['decoded'] / args.frames:.2f} decodes per frame "
                  f"(max {runs[0]['max_per_frame']} for one frame), track_to_folder {best:.1f} s (best of "
                  f"{len(runs)})")
    if results["before"]:
        ratio = min(r["seconds"] for r in results["after"]) / min(r["seconds"] for r in results["before"])
        print(f"after/before time: {ratio:.2f}")
        report["after_over_before"] = ratio
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
