"""Synthetic TAP-Vid files in the exact on-disk formats tapnet reads (no real data needed).

- DAVIS: one pickle, dict ``video_name -> {"video", "points", "occluded"}``.
- RGB-Stacking: one pickle, list of such dicts.
- Kinetics: shards ``NNNN_of_MMMM.pkl``, lists of such dicts whose ``"video"`` holds JPEG bytes (a list, or a
  numpy bytes array as tapnet's ``generate_tapvid.py`` writes it).

Also hostile pickles whose loading would run code (they touch a marker file), to test the restricted
unpickler.
"""

from __future__ import annotations

import io
import os
import pathlib
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def make_example(
    num_frames: int, height: int, width: int, points_fraction: np.ndarray, occluded: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """One raw TAP-Vid example: random uint8 frames (T, H, W, 3), the given points and occlusion.

    Args:
        points_fraction: float (N, T, 2) x, y in [0, 1]; stored as float32 like the DAVIS pickle.
        occluded: bool (N, T).
    """
    rng = np.random.default_rng(seed)
    return {
        "video": rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8),
        "points": np.asarray(points_fraction, dtype=np.float32),
        "occluded": np.asarray(occluded, dtype=bool),
    }


def write_pickle(path: Path, data: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    """Pickle ``data`` to ``path`` and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def write_davis_pickle(path: Path, videos: dict[str, dict[str, np.ndarray]], protocol: int = 4) -> Path:
    """A TAP-Vid-DAVIS pickle: dict video name -> example."""
    return write_pickle(path, videos, protocol)


def write_rgb_stacking_pickle(path: Path, videos: list[dict[str, np.ndarray]]) -> Path:
    """A TAP-Vid-RGB-Stacking pickle: list of examples."""
    return write_pickle(path, videos, 4)


def encode_jpeg(frame: np.ndarray, quality: int = 95) -> bytes:
    """JPEG bytes of one uint8 (H, W, 3) frame."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_kinetics_shard(
    path: Path, videos: list[dict[str, np.ndarray]], as_numpy_bytes: bool = False
) -> Path:
    """A TAP-Vid-Kinetics shard: list of examples whose frames are JPEG bytes.

    ``as_numpy_bytes`` stores the frames as ``np.array(list_of_bytes)`` (dtype ``S``), as tapnet's
    ``generate_tapvid.py`` does; otherwise as a plain list of bytes.
    """
    shard = []
    for example in videos:
        encoded = [encode_jpeg(frame) for frame in example["video"]]
        shard.append({**example, "video": np.array(encoded) if as_numpy_bytes else encoded})
    return write_pickle(path, shard, 4)


class SystemCallPayload:
    """Unpickling runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPayload:
    """Unpickling runs ``builtins.exec`` on code that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


class TouchPayload:
    """Unpickling calls ``pathlib.Path.touch(marker)``: harmless, so a test may let plain pickle run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def write_hostile_pickle(path: Path, payload: object) -> Path:
    """A DAVIS-looking pickle with ``payload`` inside one video's dict."""
    videos = {"bear": {"video": np.zeros((1, 2, 2, 3), np.uint8), "payload": payload}}
    return write_pickle(path, videos, 4)
