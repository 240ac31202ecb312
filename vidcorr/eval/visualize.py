"""Pictures of evaluated pairs, for looking at what the method did (``vidcorr eval ... --visualize``).

Per pair, under ``<vis>/<pair folder>/`` (the pair id with characters other than letters, digits, ``.``,
``_`` and ``-`` replaced by ``_``):

- ``pair.png``: source and target side by side, a line from each source keypoint to its predicted target
  point, green where the prediction is correct and red where not (under the run's protocol, at PCK@0.10 or,
  where 0.10 was not asked for, the largest alpha);
- ``point<k>_src.png`` and ``point<k>_trg.png`` (when the predictor returned attention maps): one tile per
  layer and a last tile with their mean, each the map blended over the image, with the source keypoint
  (white) or the predicted point (green/red) and the ground truth (white) marked;
- ``pair.json``: this pair's entry of the index.

``<vis>/index.json`` lists every pair's entry: the pair, its image files, and per keypoint the points, the
confidence, the correct flags per protocol and alpha, and the map files. It is rebuilt from the
``pair.json`` files after each run, so shards and resumed runs writing into one folder end with one index.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidcorr.eval.pairs import Pair
from vidcorr.eval.pck import PairScore, PCKProtocol
from vidcorr.eval.runner import Prediction
from vidcorr.imageio import write_image
from vidcorr.render import CORRECT_RGB, WRONG_RGB, blend_heatmap, default_radius, draw_marker, side_by_side

INDEX_FILE = "index.json"
PAIR_FILE = "pair.json"
INDEX_VERSION = 1
_TRUTH_RGB = (255, 255, 255)


def pair_folder_name(pair_id: str) -> str:
    """A file-system-safe folder name for a pair id (``:``, ``(``, ``)``, ``/`` ... become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", pair_id)


def shown_alpha(alphas: tuple[float, ...]) -> float:
    """The alpha pictures colour by: 0.10 where it was scored, else the largest."""
    return 0.1 if any(abs(a - 0.1) < 1e-12 for a in alphas) else max(alphas)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    """`tile` with a black strip and `text` above it."""
    height = max(12, tile.shape[0] // 12)
    strip = np.zeros((height, tile.shape[1], 3), dtype=np.uint8)
    scale = max(0.25, height / 30)
    cv2.putText(strip, text, (2, height - max(2, height // 5)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def map_strip(image: np.ndarray, maps: np.ndarray, layers: tuple[int, ...], marks: list[tuple[np.ndarray, tuple]]
              ) -> np.ndarray:
    """One row of tiles: each layer's map blended over `image`, then their mean; `marks` drawn on each.

    image: uint8 (H, W, 3). maps: float (L, S, S) in the model's square space (resized to H x W).
    marks: (x, y) in image pixels and an RGB colour each.
    """
    radius = default_radius(image.shape[1], image.shape[0])
    names = [f"layer {n}" for n in layers] if len(layers) == len(maps) else [f"map {i}" for i in range(len(maps))]
    tiles = []
    for heat, name in [*zip(maps, names, strict=True), (maps.mean(axis=0), "mean")]:
        tile = blend_heatmap(image, heat)
        for xy, rgb in marks:
            if np.isfinite(xy).all():
                draw_marker(tile, xy, rgb, radius)
        tiles.append(_caption(tile, name))
    return np.concatenate(tiles, axis=1)


def write_pair_visuals(vis_dir: str | Path, pair: Pair, src_image: np.ndarray, trg_image: np.ndarray,
                       score: PairScore, prediction: Prediction, *,
                       protocol: PCKProtocol | str = PCKProtocol.OFFICIAL) -> dict[str, Any]:
    """Write one pair's pictures and ``pair.json`` (see the module docstring); return its index entry.

    Paths in the entry are relative to `vis_dir`, except the benchmark's own image files.
    """
    protocol = PCKProtocol(protocol)
    vis_dir = Path(vis_dir)
    folder = pair_folder_name(pair.pair_id)
    pair_dir = vis_dir / folder
    pair_dir.mkdir(parents=True, exist_ok=True)
    alpha = shown_alpha(score.alphas)
    column = score.alphas.index(alpha)
    correct = score.correct_for(protocol)[:, column]
    write_image(pair_dir / "pair.png", side_by_side(src_image, trg_image, pair.src_kps, score.pred_xy,
                                                    correct=correct))
    points = []
    for k in range(score.num_keypoints):
        verdict_rgb = CORRECT_RGB if correct[k] else WRONG_RGB
        entry: dict[str, Any] = {
            "index": k,
            "kps_id": pair.kps_ids[k] if pair.kps_ids is not None else None,
            "src_xy": [float(v) for v in pair.src_kps[k]],
            "pred_xy": [float(v) for v in score.pred_xy[k]],
            "true_xy": [float(v) for v in score.true_xy[k]],
            "correct": bool(correct[k]),
            "correct_by_protocol": {
                name: {repr(a): bool(flags[k, i]) for i, a in enumerate(score.alphas)}
                for name, flags in score.correct.items()
            },
            "confidence": (float(prediction.confidence[k]) if prediction.confidence is not None else None),
            "maps": None,
        }
        if prediction.src_maps is not None and prediction.trg_maps is not None:
            src_file, trg_file = f"{folder}/point{k:02d}_src.png", f"{folder}/point{k:02d}_trg.png"
            write_image(vis_dir / src_file, map_strip(src_image, np.asarray(prediction.src_maps[k], np.float32),
                                                      prediction.layers, [(pair.src_kps[k], _TRUTH_RGB)]))
            write_image(vis_dir / trg_file, map_strip(trg_image, np.asarray(prediction.trg_maps[k], np.float32),
                                                      prediction.layers, [(score.true_xy[k], _TRUTH_RGB),
                                                                          (score.pred_xy[k], verdict_rgb)]))
            entry["maps"] = {"src": src_file, "trg": trg_file,
                             "tiles": [f"layer {n}" for n in prediction.layers] + ["mean"]}
        points.append(entry)
    record = {
        "pair_id": pair.pair_id,
        "dataset": pair.dataset,
        "category": pair.category,
        "src_image": str(pair.src_path),
        "trg_image": str(pair.trg_path),
        "image": f"{folder}/pair.png",
        "protocol": protocol.value,
        "alpha": alpha,
        "pck": float(100.0 * correct.mean()) if len(correct) else None,
        "points": points,
    }
    _write_json(pair_dir / PAIR_FILE, record)
    return record


def write_index(vis_dir: str | Path) -> Path:
    """Rebuild ``<vis_dir>/index.json`` from every ``<pair folder>/pair.json``, pairs sorted by id."""
    vis_dir = Path(vis_dir)
    records = []
    for path in sorted(vis_dir.glob(f"*/{PAIR_FILE}")):
        try:
            records.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a pair whose writing was killed: its next run rewrites it
    records.sort(key=lambda r: r["pair_id"])
    return _write_json(vis_dir / INDEX_FILE, {"version": INDEX_VERSION, "pairs": records})


def _write_json(path: Path, data: Any) -> Path:
    # Several shards may rebuild the index at once: a private temporary per process, then a rename.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path
