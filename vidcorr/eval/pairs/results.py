"""Per-pair results files (JSON lines), resuming, sharding and merging for the pair benchmarks.

A results file holds one JSON object per line, one line per finished pair, appended, flushed and fsynced
as each pair finishes, so a killed run loses at most the line it was writing. A line (format version 1)::

    {"v": 1, "pair_id": "...", "category": "...", "dataset": "spair", "alphas": [0.05, 0.1],
     "pred_xy": [[x, y], ...], "true_xy": [[x, y], ...], "trg_size": [W, H],
     "thresholds": {"official": 123.0, "seed": 140.2},
     "correct": {"official": [[true, false], ...], "seed": [[true, true], ...]},
     "flags": {"occlusion": 0, ...}, "extra": {...}}

Points are x, y in the target image's original pixels; thresholds are at alpha = 1 in each protocol's
pixels; ``correct`` has one row per keypoint and one column per alpha (see ``vidcorr.eval.pck``). Floats
are written with ``repr`` precision, so reading a line gives back exactly the numbers that were written.

Reading drops an unparseable LAST line (the one a kill can leave half-written) and only that one: a bad
line anywhere else is a DataError naming the file and line. Opening a records writer
(``runs.folder.JsonLinesWriter``) on such a file first cuts that last line off, so the appended lines start on a
line of their own.

Files, shards, resuming and merging are those of every run folder (``vidcorr.runs``); this module
gives only the pair benchmarks' record format, :data:`PAIR_RECORDS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vidcorr.eval.pairs.pck import PairScore
from vidcorr.runs.folder import RecordKind

FORMAT_VERSION = 1


def score_to_json(score: PairScore) -> dict[str, Any]:
    """The JSON object of one results line (see the module docstring)."""
    return {
        "v": FORMAT_VERSION,
        "pair_id": score.pair_id,
        "category": score.category,
        "dataset": score.dataset,
        "alphas": list(score.alphas),
        "pred_xy": score.pred_xy.tolist(),
        "true_xy": score.true_xy.tolist(),
        "trg_size": list(score.trg_size),
        "thresholds": dict(score.thresholds),
        "correct": {name: flags.tolist() for name, flags in score.correct.items()},
        "flags": dict(score.flags),
        "extra": dict(score.extra),
    }


def score_from_json(obj: Any) -> PairScore:
    """Rebuild a :class:`PairScore` from a results-line object.

    Raises:
        ValueError: not a version-1 results object (a missing key, a wrong type or shape).
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if obj.get("v") != FORMAT_VERSION:
        raise ValueError(f"expected format version {FORMAT_VERSION}, got {obj.get('v')!r}")
    try:
        return PairScore(
            pair_id=str(obj["pair_id"]),
            category=str(obj["category"]),
            dataset=str(obj["dataset"]),
            alphas=tuple(obj["alphas"]),
            pred_xy=np.asarray(obj["pred_xy"], dtype=np.float64),
            true_xy=np.asarray(obj["true_xy"], dtype=np.float64),
            trg_size=tuple(obj["trg_size"]),
            thresholds=dict(obj["thresholds"]),
            correct=dict(obj["correct"]),
            flags=dict(obj.get("flags", {})),
            extra=dict(obj.get("extra", {})),
        )
    except KeyError as exc:
        raise ValueError(f"expected key {exc.args[0]!r}") from None
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _prediction(score: PairScore) -> tuple[tuple[int, ...], bytes]:
    """What two lines of one pair must share to agree: the predicted points (NaN equal to NaN)."""
    pred = np.ascontiguousarray(score.pred_xy, dtype=np.float64)
    return pred.shape, np.where(np.isnan(pred), np.nan, pred).tobytes()


PAIR_RECORDS: RecordKind[PairScore] = RecordKind(
    prefix="results", noun="results line", to_json=score_to_json, from_json=score_from_json,
    key=lambda score: score.pair_id, fingerprint=_prediction, describe=lambda score: f"pair {score.pair_id!r}")
"""The pair benchmarks' records: ``results.jsonl`` / ``results-shard<i>of<n>.jsonl``, keyed by pair id."""
