"""Does reading a long video keep memory flat? Peak RSS while streaming it with each backend.

    python -m benchmarks.video_memory [--frames 2000] [--size 640x360] [--batch-size 16]
                                      [--consumer-ms 0] [--backends decord,opencv,decord-raw] [--json out.json]

Writes a synthetic video (a scrolling texture and a moving square, .mp4) to a temporary folder, then
streams it through `VideoReader.iter_frames` once per backend, each in a fresh Python process so
that one backend's peak cannot hide another's. In each process the resident set size (VmRSS in
/proc/self/status) is sampled after opening, after every batch, after the first 100 frames and at
the end; the kernel's peak counter (VmHWM) is reset after opening (/proc/self/clear_refs) and read
at the end. Streaming means the growth after the first 100 frames is ~0 MiB, against the size of
the whole video decoded at once, printed for comparison. `decord-raw` reads with decord's own
get_batch and nothing else, to show the background read-ahead that vidcorr's decord reader stops
(see `vidcorr.video.DecordReader`); `--consumer-ms` makes each batch take longer, as a model does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), or None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_mib() -> float:
    kib = _status_kib("VmRSS")
    if kib is None:  # no /proc (macOS): fall back to the lifetime peak, in bytes there
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB
    return kib / 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def _synthetic_frames(num_frames: int, width: int, height: int, seed: int = 0) -> Iterator[np.ndarray]:
    """A texture scrolling right 3 px per frame and a white square sliding down: uint8 (H, W, 3) RGB."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 8, width // 8, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
    side = height // 6
    for t in range(num_frames):
        frame = np.roll(texture, 3 * t, axis=1)
        top = (2 * t) % (height - side)
        frame[top : top + side, width // 2 - side // 2 : width // 2 + side // 2] = 255
        yield frame


def _raw_decord_batches(video: str, batch_size: int) -> tuple[int, Iterator[tuple[list[int], np.ndarray]]]:
    """decord used directly (get_batch, no seek after it): the read-ahead vidcorr's reader avoids."""
    import decord

    vr = decord.VideoReader(video, ctx=decord.cpu(0))
    n = len(vr)

    def batches() -> Iterator[tuple[list[int], np.ndarray]]:
        for lo in range(0, n, batch_size):
            indices = list(range(lo, min(n, lo + batch_size)))
            yield indices, vr.get_batch(indices).asnumpy()

    return n, batches()


def _child(backend: str, video: str, batch_size: int, consumer_ms: float) -> dict:
    """Stream `video` with one backend and report memory; runs in its own process."""
    from vidcorr.io.video import open_video

    rss_before_open = _rss_mib()
    if backend == "decord-raw":
        num_frames, batches = _raw_decord_batches(video, batch_size)
    else:
        reader = open_video(video, backend=backend)
        num_frames, batches = reader.info.num_frames, reader.iter_frames(batch_size=batch_size)
    rss_after_open = _rss_mib()
    peak_reset = _reset_peak()
    samples = [rss_after_open]
    rss_after_100 = None
    frames_read = 0
    checksum = 0
    read_s = 0.0
    start = time.perf_counter()
    for indices, frames in batches:
        read_s += time.perf_counter() - start
        frames_read += len(indices)
        checksum += int(frames[:, ::97, ::97].sum())  # touch the data
        if consumer_ms:
            time.sleep(consumer_ms / 1000)  # a slow consumer, as a model is
        samples.append(_rss_mib())
        if rss_after_100 is None and frames_read >= 100:
            rss_after_100 = samples[-1]
        start = time.perf_counter()
    rss_end = _rss_mib()
    hwm_kib = _status_kib("VmHWM") if peak_reset else None
    peak = max(samples + ([hwm_kib / 1024] if hwm_kib is not None else []))
    return {
        "backend": backend,
        "consumer_ms_per_batch": consumer_ms,
        "frames_announced": num_frames,
        "frames_read": frames_read,
        "batch_size": batch_size,
        "read_fps": frames_read / read_s,
        "rss_before_open_mib": rss_before_open,
        "rss_after_open_mib": rss_after_open,
        "rss_after_100_mib": rss_after_100,
        "rss_end_mib": rss_end,
        "peak_rss_mib": peak,
        "peak_growth_mib": peak - rss_after_open,
        "growth_100_to_end_mib": rss_end - rss_after_100 if rss_after_100 is not None else None,
        "peak_counter": "VmHWM after clear_refs" if hwm_kib is not None else "sampled VmRSS",
        "checksum": checksum,
    }


def _run_child(backend: str, video: Path, batch_size: int, consumer_ms: float) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "benchmarks.video_memory", "--child", backend, str(video),
           "--batch-size", str(batch_size), "--consumer-ms", str(consumer_ms)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{backend} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--backends", default=None,
        help="comma-separated from decord, opencv, decord-raw (decord without vidcorr's seek after each "
        "batch); default: decord,opencv,decord-raw where decord is installed, else opencv",
    )
    parser.add_argument(
        "--consumer-ms", type=float, default=0.0,
        help="sleep this long per batch, as a slow consumer (a model) would (default 0)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "VIDEO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.batch_size, args.consumer_ms)))
        return 0

    from vidcorr.io.atomic import atomic_path
    from vidcorr.io.sample import write_synthetic_video
    from vidcorr.io.video import decord_available

    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.backends:
        backends = args.backends.split(",")
    else:
        backends = ["decord", "opencv", "decord-raw"] if decord_available() else ["opencv"]
    with tempfile.TemporaryDirectory(prefix="vidcorr-bench-") as tmp:
        video = Path(tmp) / "synthetic.mp4"
        start = time.perf_counter()
        write_synthetic_video(video, _synthetic_frames(args.frames, width, height), fps=30.0)
        write_s = time.perf_counter() - start
        video_mib = video.stat().st_size / MIB
        results = [_run_child(backend, video, args.batch_size, args.consumer_ms) for backend in backends]

    decoded_mib = args.frames * width * height * 3 / MIB
    batch_mib = args.batch_size * width * height * 3 / MIB
    print(f"video: {args.frames} frames, {width}x{height}, mp4 {video_mib:.1f} MiB, written in {write_s:.1f} s")
    print(f"all frames decoded at once would take {decoded_mib:.0f} MiB; one batch of {args.batch_size} "
          f"takes {batch_mib:.1f} MiB; consumer work {args.consumer_ms:g} ms per batch")
    header = ("backend", "frames read", "read fps", "RSS open MiB", "RSS @100 MiB", "RSS end MiB",
              "100->end MiB", "peak growth MiB")
    rows = [
        (r["backend"], str(r["frames_read"]), _fmt(r["read_fps"], ".0f"), _fmt(r["rss_after_open_mib"]),
         _fmt(r["rss_after_100_mib"]), _fmt(r["rss_end_mib"]), _fmt(r["growth_100_to_end_mib"], "+.1f"),
         _fmt(r["peak_growth_mib"], "+.1f"))
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    if args.json:
        report = {
            "frames": args.frames, "size": [width, height], "batch_size": args.batch_size,
            "consumer_ms_per_batch": args.consumer_ms,
            "video_mib": video_mib, "all_frames_decoded_mib": decoded_mib, "batch_mib": batch_mib,
            "results": results,
        }
        with atomic_path(args.json) as out, open(out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
