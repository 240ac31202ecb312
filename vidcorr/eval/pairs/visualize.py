"""Pictures of evaluated pairs, for looking at what the method did (``vidcorr eval ... --visualize``).

Per pair, under ``<vis>/<pair folder>/`` (``vidcorr.io.names.safe_name`` of the pair id), in the format of
``vidcorr.visuals``:

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

from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.eval.pairs.pair import Pair, Prediction
from vidcorr.eval.pairs.pck import PairScore, PCKProtocol
from vidcorr.io.atomic import write_json
from vidcorr.io.images import write_image
from vidcorr.io.names import safe_name
from vidcorr.io.render import CORRECT_RGB, WRONG_RGB, side_by_side
from vidcorr.web.visuals import PAIR_FILE, map_strip

_TRUTH_RGB = (255, 255, 255)


def shown_alpha(alphas: tuple[float, ...]) -> float:
    """The alpha pictures colour by: 0.10 where it was scored, else the largest."""
    return 0.1 if any(abs(a - 0.1) < 1e-12 for a in alphas) else max(alphas)


def write_pair_visuals(vis_dir: str | Path, pair: Pair, src_image: np.ndarray, trg_image: np.ndarray,
                       score: PairScore, prediction: Prediction, *,
                       protocol: PCKProtocol | str = PCKProtocol.OFFICIAL) -> dict[str, Any]:
    """Write one pair's pictures and ``pair.json`` (see the module docstring); return its index entry.

    Paths in the entry are relative to `vis_dir`, except the benchmark's own image files.
    """
    protocol = PCKProtocol(protocol)
    vis_dir = Path(vis_dir)
    folder = safe_name(pair.pair_id)
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
    write_json(pair_dir / PAIR_FILE, record)
    return record
