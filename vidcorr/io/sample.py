"""Synthetic videos with known motion, for tests, smoke runs and benchmarks.

`make_sample_clip` draws a small scene procedurally (deterministic for a seed): a static textured
background, a checker-textured square moving right, and a striped disc moving on a circle in front
of it. Objects only translate, so the ground truth of a point on an object is its start position
plus the object's displacement, known exactly. Mid-clip the disc passes over the square and hides
two of its points for a few frames.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcorr.errors import InputError
from vidcorr.io.tracks import Tracks
from vidcorr.io.writer import VideoWriter

POINT_NAMES = ("square centre", "square inner corner", "disc centre", "disc off-centre", "background")
# Each pixel is the mean of these sub-pixel samples (2x2 supersampling: smooth edges).
_SUBSAMPLES = (0.25, 0.75)


def write_synthetic_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 30.0, codec: str | None = None
) -> Path:
    """Write frames to a video file (atomically); the size is taken from the first frame.

    Args:
        path: output path; its suffix picks the container (see `vidcorr.video.default_codec`).
        frames: uint8 (H, W, 3) RGB frames, all the same size; any iterable (streamed).
        fps: frames per second.
        codec: FourCC to use instead of the default, e.g. 'FFV1' (lossless, .mkv/.avi) or 'MJPG'.

    Returns:
        The path written.

    Raises:
        InputError: no frames, or a frame of another size or dtype.
    """
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise InputError(f"no frames to write to {str(path)!r}")
    first = np.asarray(first)
    if first.ndim != 3:
        raise InputError(f"frames must be HxWx3 uint8 arrays; got shape {first.shape}")
    with VideoWriter(path, fps=fps, size=(first.shape[1], first.shape[0]), codec=codec) as writer:
        for frame in itertools.chain([first], iterator):
            writer.write(frame)
    return Path(path)


@dataclass(frozen=True)
class _Scene:
    """Everything random about a sample clip, drawn once from the seed."""

    width: int
    height: int
    num_frames: int
    background: np.ndarray  # float32 (H, W, 3) RGB
    square_side: float
    square_start: tuple[float, float]  # top-left (x, y) at frame 0
    square_end_x: float  # top-left x at the last frame
    square_colors: np.ndarray  # float32 (2, 3)
    disc_radius: float
    orbit_center: tuple[float, float]
    orbit_radius: float
    orbit_phase: float  # radians at frame 0
    stripe_angle: float  # radians
    stripe_width: float
    disc_colors: np.ndarray  # float32 (2, 3)
    background_point: tuple[float, float]

    def square_top_left(self, t: int) -> tuple[float, float]:
        frac = t / max(1, self.num_frames - 1)
        x0, y0 = self.square_start
        return (x0 + (self.square_end_x - x0) * frac, y0)

    def disc_center(self, t: int) -> tuple[float, float]:
        # Clockwise on screen: at the top of the orbit the disc moves left, against the square.
        angle = self.orbit_phase - 2.0 * math.pi * t / self.num_frames
        cx, cy = self.orbit_center
        return (cx + self.orbit_radius * math.cos(angle), cy + self.orbit_radius * math.sin(angle))


def _make_scene(num_frames: int, size: tuple[int, int], seed: int) -> _Scene:
    width, height = size
    rng = np.random.default_rng(seed)
    cells = rng.uniform(40, 215, size=(height // 12 + 2, width // 12 + 2, 3)).astype(np.float32)
    background: np.ndarray = cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)
    background += rng.normal(0.0, 8.0, size=background.shape).astype(np.float32)
    side = 0.3 * height
    return _Scene(
        width=width,
        height=height,
        num_frames=num_frames,
        background=np.clip(background, 0, 255),
        square_side=side,
        square_start=(0.06 * width, (0.22 + 0.06 * rng.uniform()) * height),
        square_end_x=0.94 * width - side,
        square_colors=np.array([rng.uniform(170, 255, 3), rng.uniform(0, 70, 3)], dtype=np.float32),
        disc_radius=0.16 * height,
        orbit_center=(0.55 * width, 0.55 * height),
        orbit_radius=0.25 * height,
        # Near the top of its orbit when the square passes mid-frame, so that it covers the square.
        orbit_phase=float(math.pi / 2 + rng.uniform(-0.3, 0.3)),
        stripe_angle=float(rng.uniform(0, math.pi)),
        stripe_width=0.16 * height / 3,
        disc_colors=np.array([rng.uniform(150, 255, 3), rng.uniform(0, 90, 3)], dtype=np.float32),
        background_point=(0.1 * width + 0.5, 0.85 * height + 0.5),
    )


def _draw_frame(scene: _Scene, t: int) -> np.ndarray:
    """Frame t as uint8 (H, W, 3) RGB."""
    h, w = scene.height, scene.width
    frame = np.zeros((h, w, 3), dtype=np.float32)
    sx, sy = scene.square_top_left(t)
    dx, dy = scene.disc_center(t)
    side, radius = scene.square_side, scene.disc_radius
    cell = side / 6.0
    cos_a, sin_a = math.cos(scene.stripe_angle), math.sin(scene.stripe_angle)
    for oy, ox in itertools.product(_SUBSAMPLES, _SUBSAMPLES):
        ys = (np.arange(h, dtype=np.float32) + oy)[:, None]
        xs = (np.arange(w, dtype=np.float32) + ox)[None, :]
        sample = scene.background.copy()
        u, v = xs - sx, ys - sy
        in_square = (u >= 0) & (u < side) & (v >= 0) & (v < side)
        checker = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.intp)
        sample[in_square] = scene.square_colors[np.broadcast_to(checker, in_square.shape)[in_square]]
        u, v = xs - dx, ys - dy
        in_disc = u * u + v * v < radius * radius
        stripe = (np.floor((u * cos_a + v * sin_a) / scene.stripe_width) % 2).astype(np.intp)
        sample[in_disc] = scene.disc_colors[np.broadcast_to(stripe, in_disc.shape)[in_disc]]
        frame += sample
    return np.clip(np.round(frame / len(_SUBSAMPLES) ** 2), 0, 255).astype(np.uint8)


def _ground_truth(scene: _Scene, fps: float, seed: int) -> Tracks:
    t_count = scene.num_frames
    side, radius = scene.square_side, scene.disc_radius
    points = np.empty((t_count, len(POINT_NAMES), 2), dtype=np.float64)
    occluded = np.zeros((t_count, len(POINT_NAMES)), dtype=bool)
    for t in range(t_count):
        sx, sy = scene.square_top_left(t)
        dx, dy = scene.disc_center(t)
        points[t] = [
            (sx + side / 2, sy + side / 2),
            (sx + side / 4, sy + side / 4),
            (dx, dy),
            (dx + radius / 2, dy),
            scene.background_point,
        ]
        in_disc = np.hypot(points[t, :, 0] - dx, points[t, :, 1] - dy) < radius
        in_square = (
            (points[t, :, 0] >= sx) & (points[t, :, 0] < sx + side)
            & (points[t, :, 1] >= sy) & (points[t, :, 1] < sy + side)
        )
        occluded[t, :2] = in_disc[:2]  # the disc is drawn over the square
        occluded[t, 4] = in_disc[4] or in_square[4]
    inside = (
        (points[..., 0] >= 0) & (points[..., 0] < scene.width)
        & (points[..., 1] >= 0) & (points[..., 1] < scene.height)
    )
    queries = np.concatenate([np.zeros((len(POINT_NAMES), 1)), points[0]], axis=1)
    return Tracks(
        points=points,
        visible=inside & ~occluded,
        confidence=np.ones(occluded.shape, dtype=np.float32),
        queries=queries,
        frame_indices=np.arange(t_count),
        fps=fps,
        size=(scene.width, scene.height),
        meta={"source": "vidcorr.io.sample", "seed": seed, "point_names": list(POINT_NAMES)},
    )


def synthetic_frames(
    num_frames: int = 72, size: tuple[int, int] = (320, 192), fps: float = 24.0, seed: int = 0
) -> tuple[np.ndarray, Tracks]:
    """The scene of `make_sample_clip` in memory, without encoding: exact frames and ground truth.

    Returns:
        (uint8 (T, H, W, 3) RGB frames, ground-truth `Tracks` as `make_sample_clip` returns).
    """
    num_frames, size, seed = _check_args(num_frames, size, seed)
    scene = _make_scene(num_frames, size, seed)
    frames = np.stack([_draw_frame(scene, t) for t in range(num_frames)])
    return frames, _ground_truth(scene, float(fps), seed)


def _check_args(num_frames: int, size: tuple[int, int], seed: int = 0) -> tuple[int, tuple[int, int], int]:
    if int(num_frames) < 2:
        raise InputError(f"num_frames {num_frames} is invalid: a sample clip needs at least 2 frames")
    width, height = (int(v) for v in size)
    if width < 32 or height < 32:
        raise InputError(f"size {size!r} is invalid: a sample clip is at least 32x32")
    return int(num_frames), (width, height), int(seed)


def make_sample_clip(
    path: str | os.PathLike,
    num_frames: int = 72,
    size: tuple[int, int] = (320, 192),
    fps: float = 24.0,
    seed: int = 0,
    codec: str | None = None,
) -> Tracks:
    """Write the sample scene as a video and return its ground truth.

    The default clip (72 frames of 320x192 at 24 fps, .mp4) is about 0.1-0.3 MB. Frames and ground
    truth are the same for the same arguments.

    Args:
        path: output video; .mp4 by default encoding (see `vidcorr.video.default_codec`).
        num_frames: T >= 2.
        size: (W, H), each >= 32.
        fps: frames per second.
        seed: picks the background, the colours, the stripe angle, the square's height and (a little
            of) the disc's phase.
        codec: FourCC instead of the default ('FFV1' in .mkv for lossless frames).

    Returns:
        Ground-truth `Tracks` (T, N=5): points float32 (T, 5, 2) x, y in pixels (centres at +0.5)
        of `POINT_NAMES` (square centre, a point inside the square, disc centre, a point on the
        disc, a static background point); visible False where the disc covers a point (or a point
        leaves the frame); confidence 1; queries at frame 0; meta names the points and the seed.
    """
    num_frames, size, seed = _check_args(num_frames, size, seed)
    scene = _make_scene(num_frames, size, seed)
    write_synthetic_video(path, (_draw_frame(scene, t) for t in range(num_frames)), fps=fps, codec=codec)
    return _ground_truth(scene, float(fps), seed)
