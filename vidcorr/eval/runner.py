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
(``ResultsWriter``). Every pair is computed from its own random streams, keyed by the seed, the pair id and
the keypoint (``vidcorr.streams.item_point_ids``), so a pair's prediction does not depend on which pairs ran
before it: shards merged equal one unsharded run, bit for bit on a deterministic device.

Sharding: ``--shard i/n`` and a launcher's ranks (torchrun ``RANK``/``WORLD_SIZE``, SLURM
``SLURM_PROCID``/``SLURM_NTASKS``) compose: under a launcher of W processes, ``--shard i/n`` makes
process r take shard ``i * W + r`` of ``n * W`` (a SLURM array of multi-GPU jobs), and the launcher's
local rank picks the GPU (``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vidcorr.config import Config
from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs import Pair
from vidcorr.eval.pck import DEFAULT_ALPHAS, PairScore, PCKProtocol, score_pair
from vidcorr.eval.results import ResultsWriter, Shard, read_results, shard_from_env, shard_of
from vidcorr.fit import Progress, fit
from vidcorr.locate import locate
from vidcorr.streams import item_point_ids

RUN_FILE = "run.json"
RESULTS_GLOB = "results*.jsonl"
EXECUTION_FIELDS = ("max_batch", "stop_early")
"""Config fields that change how, never what, is computed: left out of the resume check."""


@dataclass(frozen=True)
class Prediction:
    """What a predictor says about one pair.

    Attributes:
        trg_xy: float64 (K, 2) predicted x, y in the target image's original pixels, row k for source
            keypoint k.
        confidence: float32 (K,) in [0, 1], or None where the predictor has none.
        src_maps, trg_maps: float32 (K, L, S, S) restart-averaged attention maps per layer on the source
            and the target (``Location.maps``), or None; only asked for when visualizing.
        layers: the seed's numbers of the L layers of the maps.
        precision: how the fit computed (``vidcorr.fit.precision_name``), or None.
        skipped_steps: int64 (K,) fit steps each keypoint skipped for a non-finite gradient, or None.
    """

    trg_xy: np.ndarray
    confidence: np.ndarray | None = None
    src_maps: torch.Tensor | None = None
    trg_maps: torch.Tensor | None = None
    layers: tuple[int, ...] = ()
    precision: str | None = None
    skipped_steps: np.ndarray | None = None


Predictor = Callable[[Pair, np.ndarray, np.ndarray], Prediction]
"""predict(pair, src_image, trg_image) -> Prediction; images are (H, W, 3) uint8 RGB."""


def predict_pair(ldm: Any, pair: Pair, src_image: np.ndarray, trg_image: np.ndarray, cfg: Config, *,
                 return_maps: bool = False, progress: Progress | None = None) -> Prediction:
    """The method on one pair: `vidcorr.fit` on all source keypoints at once, `vidcorr.locate` on the target.

    Source keypoints are clipped into the image (0 <= x <= W, 0 <= y <= H) before fitting, since a few
    benchmark annotations sit a pixel outside it. With `return_maps` the embeddings are also located on the
    source image, for its attention maps (one more locate; only for visualizing).
    """
    height, width = src_image.shape[:2]
    src_xy = np.clip(pair.src_kps, 0.0, [float(width), float(height)])
    ids = item_point_ids(pair.pair_id, len(src_xy))  # streams keyed by (pair, keypoint)
    embeddings = fit(ldm, src_image, src_xy, cfg, progress=progress, point_ids=ids)
    location = locate(ldm, trg_image, embeddings, cfg, progress=progress, return_maps=return_maps, point_ids=ids)
    src_maps = None
    if return_maps:
        src_maps = locate(ldm, src_image, embeddings, cfg, return_maps=True, point_ids=ids).maps
    return Prediction(location.points, location.confidence, src_maps, location.maps, tuple(cfg.layers),
                      embeddings.precision, embeddings.skipped_steps)


@dataclass(frozen=True)
class EvalProgress:
    """Where a run stands, passed to the progress callback after each pair (and once before the first).

    Attributes:
        done: pairs of this shard finished, those finished by earlier runs included.
        total: pairs of this shard.
        resumed: pairs finished before this run started.
        pair_id: the pair just finished; None on the first call.
        seconds: wall time of that pair; None on the first call.
        running_pck: alpha -> per-image PCK (percent) under `protocol` over the finished pairs of this
            shard; empty while none is finished.
        protocol: the protocol of `running_pck`.
    """

    done: int
    total: int
    resumed: int
    pair_id: str | None
    seconds: float | None
    running_pck: dict[float, float]
    protocol: str


@dataclass(frozen=True)
class EvalRun:
    """The outcome of :func:`run_eval`.

    Attributes:
        results_path: this shard's results file.
        shard: (index, count) this process evaluated.
        total: pairs of this shard; resumed: finished before the run; evaluated: computed by this run.
        scores: the scores of this shard's pairs, in pair order (resumed ones included).
    """

    results_path: Path
    shard: tuple[int, int]
    total: int
    resumed: int
    evaluated: int
    scores: list[PairScore] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; an InputError quoting `text` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise InputError(f"--shard must be 'i/n' (shard i of n, counted from 0), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise InputError(f"--shard count must be >= 1, got {text!r}")
    if index >= count:
        raise InputError(f"--shard index must be in 0..{count - 1}, got {text!r}")
    return index, count


def resolve_shard(explicit: tuple[int, int] | None, env: Mapping[str, str] | None = None) -> Shard:
    """This process's shard from `--shard` and the launcher's environment (see the module docstring).

    Raises:
        InputError: malformed launcher variables (see ``results.shard_from_env``).
    """
    launched = shard_from_env(env)
    if launched is None:
        index, count = explicit or (0, 1)
        return Shard(index, count, 0)
    if explicit is None:
        return launched
    index, count = explicit
    return Shard(index * launched.count + launched.index, count * launched.count, launched.local_rank)


def device_for_rank(device: str, local_rank: int, *, launched: bool) -> str:
    """The device this process should use: under a launcher, when `device` is ``auto`` or ``cuda`` and
    CUDA is available, ``cuda:<local_rank>``, or ``cuda:0`` where the process sees a single GPU (the
    launcher bound one to it, e.g. ``srun --gpus-per-task=1``); `device` unchanged otherwise.

    Raises:
        InputError: the local rank has no GPU on this node.
    """
    if not launched or device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    count = torch.cuda.device_count()
    if count == 1:
        return "cuda:0"
    if local_rank >= count:
        raise InputError(f"local rank {local_rank} has no GPU: this node has {count} CUDA device(s); "
                         f"start at most {count} processes per node")
    return f"cuda:{local_rank}"


def results_path(out_dir: str | Path, shard: tuple[int, int]) -> Path:
    """``results.jsonl`` for one shard of one, else ``results-shard<i>of<n>.jsonl`` (zero-padded)."""
    index, count = shard
    if count == 1:
        return Path(out_dir) / "results.jsonl"
    width = len(str(count - 1))
    return Path(out_dir) / f"results-shard{index:0{width}d}of{count}.jsonl"


def results_files(out_dir: str | Path) -> list[Path]:
    """Every results file of a run folder, sorted."""
    return sorted(p for p in Path(out_dir).glob(RESULTS_GLOB) if p.is_file())


# --------------------------------------------------------------------------------------------- setup


def run_setup(benchmark: str, split: str, ldm: Any, cfg: Config, *, alphas: Sequence[float] = DEFAULT_ALPHAS,
              **reader_options: Any) -> dict[str, Any]:
    """What determines a pair's results line: written to ``run.json`` and compared on resume.

    Execution-only config fields (micro-batch size, early stop) are left out: they change how, not what.
    """
    from vidcorr import __version__

    config = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_FIELDS}
    return {
        "benchmark": benchmark,
        "split": split,
        "reader_options": {k: v for k, v in reader_options.items() if v is not None},
        "model": ldm.model_id,
        "model_fingerprint": ldm.fingerprint(),
        "dtype": str(ldm.dtype).removeprefix("torch."),
        "autocast": ldm.autocast_name,
        "config": config,
        "alphas": [float(a) for a in alphas],
        "vidcorr_version": __version__,
    }


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')} {old!r} there, {new!r} now"]


def read_setup(out_dir: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run folder, or None if it has none.

    Raises:
        DataError: the file is not a JSON object.
    """
    path = Path(out_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        setup = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(setup, dict):
        raise DataError(f"{path}: expected a JSON object")
    return setup


def check_setup(out_dir: str | Path, setup: Mapping[str, Any]) -> None:
    """Write `setup` as ``run.json``, or check that the folder's existing one matches it.

    Raises:
        InputError: the folder holds a run with other settings (the message lists what differs).
    """
    out_dir = Path(out_dir)
    existing = read_setup(out_dir)
    wanted = json.loads(json.dumps(dict(setup)))  # JSON's view: tuples become lists
    if existing is not None:
        differ = _differences({k: v for k, v in existing.items() if k != "vidcorr_version"},
                              {k: v for k, v in wanted.items() if k != "vidcorr_version"})
        if differ:
            shown = "; ".join(differ[:3]) + ("; ..." if len(differ) > 3 else "")
            raise InputError(f"{out_dir} holds a run with other settings ({shown}); resume it with the same "
                             "options or choose another --out")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    # Shards start together and all write the same run.json: a private temporary name per process.
    tmp = out_dir / f".{RUN_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / RUN_FILE)


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


def _finished_scores(out_dir: Path) -> dict[str, PairScore]:
    """Scores already in the folder's results files, first occurrence per pair id."""
    found: dict[str, PairScore] = {}
    for path in results_files(out_dir):
        for score in read_results(path):
            found.setdefault(score.pair_id, score)
    return found


def pending_pairs(pairs: Sequence[Pair], out_dir: str | Path, shard: tuple[int, int] = (0, 1)) -> list[Pair]:
    """The pairs of shard `shard` that no results file in `out_dir` holds yet (what a run would compute)."""
    done = {pair_id for path in results_files(out_dir) for pair_id in (s.pair_id for s in read_results(path))}
    return [p for p in shard_of(list(pairs), *shard) if p.pair_id not in done]


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
    shard: tuple[int, int] = (0, 1),
    setup: Mapping[str, Any] | None = None,
    visualize: bool = False,
    progress: Callable[[EvalProgress], None] | None = None,
    fsync: bool = True,
) -> EvalRun:
    """Evaluate shard `shard` = (index, count) of `pairs` into `out_dir`, resuming what is there.

    pairs: the reader's list in its deterministic order (every shard must get the same list).
    predict: called as predict(pair, src_image, trg_image) for each pair still to do (see
        :func:`predict_pair`; tests pass their own).
    alphas: as in ``vidcorr.eval.pck.score_pair``; both protocols are always scored,
        `protocol` only picks the one `progress` reports and visualizations colour by.
    setup: written to ``run.json``, or compared with the one there (see :func:`check_setup`).
    visualize: write ``vis/`` images and its index for every pair this run computes.
    progress: called once before the first pair and after each pair (a KeyboardInterrupt raised there
        stops the run with every finished pair saved).

    Returns the run's :class:`EvalRun`. Raises whatever `predict` raises; the pairs finished before stay
    saved.
    """
    protocol = PCKProtocol(protocol)
    alphas = tuple(float(a) for a in alphas)
    out_dir = Path(out_dir)
    mine = shard_of(list(pairs), *shard)
    if setup is not None:
        check_setup(out_dir, setup)
    path = results_path(out_dir, shard)
    running = _RunningPCK(alphas, protocol)
    scores: dict[str, PairScore] = {}
    drawn = 0
    if visualize:  # imported here: visualize imports this module
        from vidcorr.eval.visualize import write_index, write_pair_visuals
    with ResultsWriter(path, fsync=fsync) as writer:
        finished = _finished_scores(out_dir)  # after the writer repaired this shard's own tail
        for pair in mine:
            if pair.pair_id in finished:
                scores[pair.pair_id] = finished[pair.pair_id]
                running.add(finished[pair.pair_id])
        resumed = len(scores)

        def report(pair_id: str | None, seconds: float | None) -> None:
            if progress is not None:
                progress(EvalProgress(len(scores), len(mine), resumed, pair_id, seconds, running.values(),
                                      protocol.value))

        report(None, None)
        try:
            for pair in mine:
                if pair.pair_id in scores:
                    continue
                start = time.perf_counter()
                src_image = read_pair_image(pair.src_path, pair.src_size)
                trg_image = read_pair_image(pair.trg_path, pair.trg_size)
                prediction = predict(pair, src_image, trg_image)
                seconds = time.perf_counter() - start
                extra: dict[str, Any] = {"seconds": round(seconds, 3)}
                if prediction.confidence is not None:
                    extra["confidence"] = [float(c) for c in prediction.confidence]
                if prediction.precision is not None:
                    extra["precision"] = prediction.precision
                if prediction.skipped_steps is not None:
                    extra["skipped_steps"] = [int(k) for k in prediction.skipped_steps]
                score = score_pair(pair, prediction.trg_xy, alphas=alphas, extra=extra)
                writer.write(score)
                scores[pair.pair_id] = score
                running.add(score)
                if visualize:
                    write_pair_visuals(out_dir / "vis", pair, src_image, trg_image, score, prediction,
                                       protocol=protocol)
                    drawn += 1
                report(pair.pair_id, seconds)
        finally:
            if drawn:
                write_index(out_dir / "vis")
    ordered = [scores[p.pair_id] for p in mine if p.pair_id in scores]
    return EvalRun(path, tuple(shard), len(mine), resumed, len(ordered) - resumed, ordered)
