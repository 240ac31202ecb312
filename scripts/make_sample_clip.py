"""Write the synthetic sample clip (a moving checker square and striped disc) and its ground truth.

    python scripts/make_sample_clip.py out.mp4 [--frames 72] [--size 320x192] [--fps 24] [--seed 0]
                                               [--ground-truth gt_dir]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 320x192") from None
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output video (.mp4, .mkv, .avi)")
    parser.add_argument("--frames", type=int, default=72, help="number of frames (default 72)")
    parser.add_argument("--size", type=_size, default=(320, 192), help="WIDTHxHEIGHT (default 320x192)")
    parser.add_argument("--fps", type=float, default=24.0, help="frames per second (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    parser.add_argument("--codec", default=None, help="FourCC instead of the default for the suffix")
    parser.add_argument(
        "--ground-truth", type=Path, default=None, metavar="DIR",
        help="also write the ground truth as DIR/ground_truth.{npz,csv,json}",
    )
    args = parser.parse_args(argv)

    try:
        from vidcorr.errors import VidcorrError
        from vidcorr.io.sample import POINT_NAMES, make_sample_clip
    except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from vidcorr.errors import VidcorrError
        from vidcorr.io.sample import POINT_NAMES, make_sample_clip

    try:
        truth = make_sample_clip(
            args.out, num_frames=args.frames, size=args.size, fps=args.fps, seed=args.seed, codec=args.codec
        )
        written = truth.save_all(args.ground_truth, stem="ground_truth") if args.ground_truth else {}
    except VidcorrError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    size_kb = args.out.stat().st_size / 1024
    print(f"{args.out}: {args.frames} frames, {args.size[0]}x{args.size[1]}, {args.fps:g} fps, {size_kb:.0f} KiB")
    for i, name in enumerate(POINT_NAMES):
        x, y = truth.points[0, i]
        hidden = int((~truth.visible[:, i]).sum())
        print(f"  point {i} ({name}): starts at ({x:.2f}, {y:.2f}), hidden in {hidden} frames")
    for path in written.values():
        print(f"ground truth: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
