"""The pair-benchmark loop: per pair fit on the source keypoints, locate on the target, score, append.

One call of :func:`run_eval` evaluates one shard of a pair list into a run folder::

    <out>/run.json                                  the setup (model, config, alphas, ...), checked on resume
    <out>/results.jsonl                             unsharded runs
    <out>/results-shard<i>of<n>.jsonl               shard i of n (zero-padded)
    <out>/vis/                                      with visualize=True (see vidcorr.eval.visualize)

Per pair: read both images (raw pixels, no EXIF rotation: the annotations are on the stored pixel
grid), fit one embedding per source keypoint (all keypoints of the pair in one `vidcorr.fit` call), locate
them on the target, score the prediction under both PCK protocols (``vidcorr.eval.pck.score_pair``) and
append one results line, flushed and fsynced before the next pair starts.

Resuming: pairs already in ANY results file of the folder are skipped, whatever shard layout wrote them,
so a run may be resumed with another shard count; a half-written last line is cut off and its pair redone
(``vidcorr.runs``, whose loop this is). Every pair is computed from its own random streams, keyed by the seed,
the pair id and the keypoint (``vidcorr.streams.item_point_ids``), so a pair's prediction does not depend on which
pairs ran before it: shards merged equal one unsharded run, bit for bit on a deterministic device.

Sharding: ``--shard i/n`` and a launcher's ranks (torchrun ``RANK``/``WORLD_SIZE``, SLURM
``SLURM_PROCID``/``SLURM_NTASKS``) compose: under a launcher of W processes, ``--shard i/n`` makes
process r take shard ``i * W + r`` of ``n * W`` (a SLURM array of multi-GPU jobs), and the launcher's
local rank picks the GPU (``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidcorr.config import Config
from vidcorr.errors import DataError
from vidcorr.eval.pairs.pair import Pair, Prediction
from vidcorr.eval.pairs.pck import DEFAULT_ALPHAS, PairScore, PCKProtocol, score_pair
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr.eval.pairs.visualize import write_pair_visuals
from vidcorr.io.names import VIS_DIR
from vidcorr.method.correspond import correspond
from vidcorr.method.fit import Progress
from vidcorr.method.streams import item_point_ids
from vidcorr.runs.folder import Items, RunOptions, RunOutcome, model_setup
from vidcorr.web.visuals import write_index

"""Config fields that change how, never what, is computed: left out of the resume check."""

Predictor = Callable[[Pair, np.ndarray, np.ndarray], Prediction]
"""predict(pair, src_image, trg_image) -> Prediction; images are (H, W, 3) uint8 RGB."""


def predict_pair(ldm: Any, pair: Pair, src_image: np.ndarray, trg_image: np.ndarray, cfg: Config, *,
                 return_maps: bool = False, progress: Progress | None = None) -> Prediction:
    """The method on one pair: :func:`vidcorr.correspond.correspond` of the source keypoints.

    Source keypoints are clipped into the image (0 <= x <= W, 0 <= y <= H) before fitting, since a few
    benchmark annotations sit a pixel outside it. With `return_maps` the embeddings are also located on the
    source image, for its attention maps (one more locate; only for visualizing).
    """
    height, width = src_image.shape[:2]
    src_xy = np.clip(pair.src_kps, 0.0, [float(width), float(height)])
    ids = item_point_ids(pair.pair_id, len(src_xy))  # streams keyed by (pair, keypoint)
    found = correspond(ldm, src_image, trg_image, src_xy, cfg, return_maps=return_maps, progress=progress,
                       point_ids=ids)
    location, embeddings = found.target, found.embeddings
    return Prediction(location.points, location.confidence, found.source_maps, location.maps, tuple(cfg.layers),
                      embeddings.precision, embeddings.skipped_steps)


def pending_pairs(pairs: Sequence[Pair], out_dir: str | Path, shard: tuple[int, int] = (0, 1)) -> list[Pair]:
    """The pairs of shard `shard` that no results file in `out_dir` holds yet (what a run would compute)."""
    return PAIR_RECORDS.pending(pairs, out_dir, shard, key=lambda pair: pair.pair_id)


# --------------------------------------------------------------------------------------------- setup


def run_setup(benchmark: str, split: str, ldm: Any, cfg: Config, *, alphas: Sequence[float] = DEFAULT_ALPHAS,
              **reader_options: Any) -> dict[str, Any]:
    """What determines a pair's results line: written to ``run.json`` and compared on resume.

    Execution-only config fields (micro-batch size, early stop) are left out: they change how, not what.
    """
    return {
        "benchmark": benchmark,
        "split": split,
        "reader_options": {k: v for k, v in reader_options.items() if v is not None},
        **model_setup(ldm, cfg),
        "alphas": [float(a) for a in alphas],
    }


# --------------------------------------------------------------------------------------------- images


def read_pair_image(path: Path, size_wh: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a benchmark image, its stored pixels (no EXIF rotation).

    Raises:
        DataError: missing or unreadable, or not the (W, H) its annotation gives.
    """
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    actual = (pixels.shape[1], pixels.shape[0])
    if actual != tuple(size_wh):
        raise DataError(f"{path}: image is {actual[0]}x{actual[1]} pixels but its annotation says "
                        f"{size_wh[0]}x{size_wh[1]}")
    return pixels


# --------------------------------------------------------------------------------------------- the loop


class _RunningPCK:
    """Per-image PCK over the pairs seen so far, per alpha."""

    def __init__(self, alphas: Sequence[float], protocol: PCKProtocol) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.protocol = protocol
        self.sums = np.zeros(len(self.alphas))
        self.count = 0

    def add(self, score: PairScore) -> None:
        if score.num_keypoints == 0 or self.protocol.value not in score.correct:
            return
        if tuple(score.alphas) != self.alphas:
            return
        self.sums += score.correct_for(self.protocol).mean(axis=0)
        self.count += 1

    def values(self) -> dict[float, float]:
        if self.count == 0:
            return {}
        return {a: float(100.0 * s / self.count) for a, s in zip(self.alphas, self.sums, strict=True)}


def run_eval(
    pairs: Sequence[Pair],
    out_dir: str | Path,
    predict: Predictor,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    protocol: PCKProtocol | str = PCKProtocol.OFFICIAL,
    visualize: bool = False,
    options: RunOptions | None = None,
) -> RunOutcome[PairScore]:
    """Evaluate shard ``options.shard`` = (index, count) of `pairs` into `out_dir`, resuming what is there.

    pairs: the reader's list in its deterministic order (every shard must get the same list).
    predict: called as predict(pair, src_image, trg_image) for each pair still to do (see
        :func:`predict_pair`; tests pass their own).
    alphas: as in ``vidcorr.eval.pck.score_pair``; both protocols are always scored,
        `protocol` only picks the one ``options.progress`` reports and visualizations colour by.
    visualize: write ``vis/`` images and its index for every pair this run computes.
    options: the shard, the setup for ``run.json``, progress (called once before the first pair and after each
        pair) and fsync (:class:`~vidcorr.eval.options.RunOptions`; None: its defaults).

    Returns the run's :class:`~vidcorr.runs.RunOutcome`. Raises whatever `predict` raises; the pairs finished
    before stay saved.
    """
    protocol = PCKProtocol(protocol)
    alphas = tuple(float(a) for a in alphas)
    out_dir = Path(out_dir)
    drawn = 0

    def process(pair: Pair) -> PairScore:
        nonlocal drawn
        start = time.perf_counter()
        src_image = read_pair_image(pair.src_path, pair.src_size)
        trg_image = read_pair_image(pair.trg_path, pair.trg_size)
        prediction = predict(pair, src_image, trg_image)
        extra: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 3)}
        if prediction.confidence is not None:
            extra["confidence"] = [float(c) for c in prediction.confidence]
        if prediction.precision is not None:
            extra["precision"] = prediction.precision
        if prediction.skipped_steps is not None:
            extra["skipped_steps"] = [int(k) for k in prediction.skipped_steps]
        score = score_pair(pair, prediction.trg_xy, alphas=alphas, extra=extra)
        if visualize:
            write_pair_visuals(out_dir / VIS_DIR, pair, src_image, trg_image, score, prediction, protocol=protocol)
            drawn += 1
        return score

    items = Items([p.pair_id for p in pairs], lambda todo: (p for p in pairs if p.pair_id in todo),
                  lambda pair: pair.pair_id, noun="pairs")
    try:
        return (options or RunOptions()).run_items(PAIR_RECORDS, out_dir, items, process,
                                                   _RunningPCK(alphas, protocol))
    finally:
        if drawn:
            write_index(out_dir / VIS_DIR)
