"""A synthetic JHMDB folder in the publisher's exact layout: PNG frames (OpenCV), ``joint_positions.mat`` files
written with ``scipy.io.savemat`` (``pos_img`` 2 x 15 x T, MATLAB 1-based pixels) and split files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.io import savemat

NUM_JOINTS = 15


@dataclass(frozen=True)
class Clip:
    """One synthetic video: `frames` PNGs and `pos_img` (2, 15, T_joints) as stored (MATLAB 1-based)."""

    frames: list[np.ndarray]
    pos_img: np.ndarray


def make_clip(num_frames: int, seed: int, height: int = 48, width: int = 64, joint_frames: int | None = None) -> Clip:
    """Textured frames and 15 joints drifting one pixel right per frame, spread over the middle of the frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(height, width + num_frames, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(base[:, num_frames - t: num_frames - t + width]) for t in range(num_frames)]
    first = np.column_stack([rng.uniform(8, width - 8 - num_frames, NUM_JOINTS),
                             rng.uniform(6, height - 6, NUM_JOINTS)])
    count = num_frames if joint_frames is None else joint_frames
    xy = first[None] + np.arange(count)[:, None, None] * np.array([1.0, 0.0])  # (T, 15, 2), 0-based-ish pixels
    return Clip(frames, (xy + 1.0).transpose(2, 1, 0).copy())  # stored 1-based: 2 x 15 x T


def write_clip(root: Path, action: str, video: str, clip: Clip) -> None:
    folder = root / "Rename_Images" / action / video
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(clip.frames, start=1):
        assert cv2.imwrite(str(folder / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    joints = root / "joint_positions" / action / video
    joints.mkdir(parents=True, exist_ok=True)
    scale = np.ones((1, clip.pos_img.shape[2]))  # the real files hold more keys; the benchmark reads pos_img
    savemat(str(joints / "joint_positions.mat"), {"pos_img": clip.pos_img, "scale": scale})


def write_split(root: Path, action: str, lines: list[tuple[str, int]]) -> None:
    splits = root / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    (splits / f"{action}_test_split1.txt").write_text("".join(f"{video}.avi {kind} \n" for video, kind in lines))
    # Other splits exist in the real release; the benchmark reads split 1 only.
    (splits / f"{action}_test_split2.txt").write_text("".join(f"{video}.avi 1 \n" for video, _ in lines))


def write_jhmdb(root: Path, clips: dict[tuple[str, str], Clip], train: dict[str, list[str]] | None = None) -> Path:
    """`clips` (action, video) -> Clip as test videos (split 1, label 2), `train` action -> videos listed with 1
    (and given no files: the benchmark never reads them). Returns `root`."""
    by_action: dict[str, list[tuple[str, int]]] = {}
    for (action, video), clip in clips.items():
        write_clip(root, action, video, clip)
        by_action.setdefault(action, []).append((video, 2))
    for action, videos in (train or {}).items():
        by_action.setdefault(action, []).extend((video, 1) for video in videos)
    for action, lines in by_action.items():
        write_split(root, action, sorted(lines, key=lambda line: line[0]))
    return root
