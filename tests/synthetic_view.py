"""Inputs of the viewer made without a model: an eval run written by the real runner and visualizer from a
stand-in predictor, and track key frames from synthetic tracks and maps.

Names from files include markup: a category with an ``<img onerror>`` and an image name with ``<script>``
(both legal file names), and, patched into the index afterwards, a pair id that closes the data block.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from conftest import random_image
from PIL import Image
from synthetic_pairs import SPairPair, write_spair

from vidcorr.eval.pairs.pair import Prediction
from vidcorr.eval.pairs.readers import read_benchmark
from vidcorr.eval.pairs.runner import run_eval
from vidcorr.io.reader import MemoryReader
from vidcorr.io.tracks import Tracks
from vidcorr.runs.folder import RunOptions
from vidcorr.web.visuals import KeyFrameMaps, ViewOptions, write_track_visuals

EVIL_CATEGORY = 'cat<img src=x onerror="window.__xss=1">'
EVIL_IMAGE = "evil<script>window.__xss=2<b>x"  # a legal file name: no "/"
EVIL_PAIR_ID = "</script><script>window.__xss=3</script><!--"
LAYERS = (5, 8)
MAP_SIDE = 8


def spair_pairs() -> list[SPairPair]:
    """Four pairs in two categories: pair 0 has three points, one of them wrong."""
    pairs = []
    for i in range(4):
        category = EVIL_CATEGORY if i == 3 else ("aeroplane" if i % 2 == 0 else "bus")
        src = EVIL_IMAGE if i == 3 else f"2008_{i:06d}"
        kps = [[30.0 + 40 * k, 25.0 + 30 * k] for k in range(3 if i == 0 else 2)]
        pairs.append(SPairPair(
            number=i + 1, category=category, src=src, trg=f"2009_{i:06d}", src_size=(160, 120),
            trg_size=(150, 130), src_kps=kps, trg_kps=[[x * 0.8 + 10, y * 0.9 + 8] for x, y in kps],
            src_bbox=[5, 5, 150, 110], trg_bbox=[5, 5, 140, 120], kps_ids=[str(k) for k in range(len(kps))]))
    return pairs


def bump_maps(num_points: int, shift: int) -> torch.Tensor:
    """(K, L, S, S) maps, a single hot cell per point and layer, different for every point."""
    maps = torch.zeros(num_points, len(LAYERS), MAP_SIDE, MAP_SIDE)
    for k in range(num_points):
        for layer in range(len(LAYERS)):
            maps[k, layer, (k + shift) % MAP_SIDE, (2 * k + layer + shift) % MAP_SIDE] = 1.0
    return maps


def predict(pair, src_image, trg_image) -> Prediction:
    """Every point on its true target, but point 1 of pairs 0 and 2 far off (wrong at any alpha)."""
    pred = np.array(pair.trg_kps, dtype=np.float64)
    if pair.pair_id.startswith(("000001", "000003")):
        pred[1] += [60.0, -20.0]
    k = pair.num_keypoints
    return Prediction(pred, np.linspace(0.9, 0.5, k).astype(np.float32), bump_maps(k, 1), bump_maps(k, 3), LAYERS)


def write_eval_run(root: Path) -> Path:
    """``<root>/out`` as `vidcorr eval spair ... --visualize` leaves it, with textured images; its pair id of
    pair 3 (the category with markup) is then replaced by `EVIL_PAIR_ID` in ``vis/index.json``."""
    spair = write_spair(root / "SPair-71k", {"test": spair_pairs()})
    for n, path in enumerate(sorted((spair / "JPEGImages").rglob("*.jpg"))):
        width, height = Image.open(path).size
        Image.fromarray(random_image(height, width, seed=n)).save(path)
    out = root / "out"
    run_eval(read_benchmark("spair", spair), out, predict, visualize=True, options=RunOptions(fsync=False))
    index_path = out / "vis" / "index.json"
    index = json.loads(index_path.read_text())
    for entry in index["pairs"]:
        if entry["category"] == EVIL_CATEGORY:
            entry["pair_id"] = EVIL_PAIR_ID
    index_path.write_text(json.dumps(index))
    return out


TRACK_FRAMES, TRACK_POINTS, REF_FRAME = 9, 3, 2


def write_track_run(root: Path, truth: np.ndarray | None = None,
                    names: list[str] | None = None) -> tuple[Path, Tracks, list[int]]:
    """``<root>/track`` with keyframes/ from synthetic tracks (points drifting right) on a textured clip; heat
    maps peak at a point- and frame-dependent cell; with `truth` (T, N, 2) and `names`, a benchmark's ground
    truth and joint names. Returns the folder, the tracks and the key frames."""
    base = random_image(96, 128, seed=7)
    frames = [np.roll(base, 4 * t, axis=1) for t in range(TRACK_FRAMES)]
    queries = np.array([[REF_FRAME, 20.5 + 30 * i, 30.5 + 20 * i] for i in range(TRACK_POINTS)], np.float32)
    points = np.stack([queries[:, 1:] + [4.0 * (t - REF_FRAME), 0.0] for t in range(TRACK_FRAMES)])
    visible = np.ones((TRACK_FRAMES, TRACK_POINTS), bool)
    visible[6, 2] = False
    tracks = Tracks(points=points, visible=visible, confidence=np.where(visible, 0.9, 0.2), queries=queries,
                    frame_indices=np.arange(TRACK_FRAMES), fps=10.0, size=(128, 96), meta={"video": "clip.mp4"})
    key_frames = [0, 2, 4, 8]
    maps = KeyFrameMaps(key_frames)
    for t in key_frames:
        layer_maps = np.zeros((TRACK_POINTS, 2, 16, 16), np.float32)
        for i in range(TRACK_POINTS):
            layer_maps[i, :, 3 + 2 * i, (t + 5 * i) % 16] = 1.0
        maps.add(t, np.arange(TRACK_POINTS), layer_maps)
    out = root / "track"
    write_track_visuals(out, MemoryReader(frames, fps=10.0), tracks, key_frames, maps,
                        view=ViewOptions(trail=3, truth=truth, names=names))
    return out, tracks, key_frames
