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
line anywhere else is a DataError naming the file and line. Opening a :class:`ResultsWriter` on such a file
first cuts that last line off, so the appended lines start on a line of their own.

Sharding is by position: shard ``index`` of ``count`` takes the items at positions ``index``,
``index + count``, ... of the reader's deterministic pair order. Each shard writes its own file;
:func:`merge_results` joins them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pck import PairScore

FORMAT_VERSION = 1
_T = TypeVar("_T")
T = TypeVar("T")


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


def _parse_line(raw: bytes) -> PairScore:
    return score_from_json(json.loads(raw.decode("utf-8")))


def _last_line_start(handle: Any, size: int) -> int:
    """Byte offset where the file's last line starts (a final newline belongs to that line)."""
    position = size - 1
    while position > 0:
        step = min(1 << 16, position)
        handle.seek(position - step)
        block = handle.read(step)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return position - step + newline + 1
        position -= step
    return 0


def _repair_tail(path: Path, parse_line: Callable[[bytes], object]) -> None:
    """Cut off a last line that is not a complete line `parse_line` accepts (a run killed mid-write)."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        start = _last_line_start(handle, size)
        handle.seek(start)
        last = handle.read()
        if last.endswith(b"\n"):
            try:
                parse_line(last)
                return
            except (ValueError, UnicodeDecodeError):
                pass
        handle.truncate(start)
        handle.flush()
        os.fsync(handle.fileno())


class JsonLinesWriter(Generic[T]):
    """Append records to a JSON-lines file, one durable line per record.

    Each :meth:`write` appends `to_json(record)` as a line, flushes it and fsyncs the file
    (``fsync=False`` skips the fsync, for tests or file systems where it is slow). Opening cuts off a
    half-written last line left by a killed run (one `parse_line` rejects). Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, to_json: Callable[[T], dict[str, Any]],
                 parse_line: Callable[[bytes], object], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _repair_tail(self.path, parse_line)
        self._to_json = to_json
        self._fsync = fsync
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: T) -> None:
        """Append `record` as one line and make it durable before returning."""
        self._file.write(json.dumps(self._to_json(record), separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> JsonLinesWriter[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ResultsWriter(JsonLinesWriter[PairScore]):
    """Append scored pairs to a results file, one durable line per pair (see JsonLinesWriter)."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        super().__init__(path, score_to_json, _parse_line, fsync=fsync)


def read_results(path: str | os.PathLike) -> list[PairScore]:
    """All scored pairs of a results file, in file order.

    An unparseable last line (a run killed mid-write) is dropped; blank lines are skipped.

    Raises:
        DataError: the file does not exist, or a line other than the last is not a results line (the
            message names the file and the 1-based line number).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: results file not found")
    lines = [(n, raw) for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1) if raw.strip()]
    scores = []
    for position, (line_no, raw) in enumerate(lines):
        try:
            scores.append(_parse_line(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            if position == len(lines) - 1:
                break
            raise DataError(f"{path}:{line_no}: not a results line ({exc})") from None
    return scores


def finished_pair_ids(path: str | os.PathLike) -> set[str]:
    """Pair ids already in a results file (empty if the file does not exist yet), for resuming."""
    path = Path(path)
    if not path.exists():
        return set()
    return {score.pair_id for score in read_results(path)}


def shard_of(items: Sequence[_T], index: int, count: int) -> list[_T]:
    """Shard `index` of `count`: the items at positions index, index + count, index + 2 * count, ...

    The shards of 0..count-1 partition `items` and keep its order; pass the reader's deterministic pair
    list so that every process computes the same split.

    Raises:
        InputError: count < 1 or index outside 0..count-1.
    """
    if count < 1:
        raise InputError(f"shard count must be >= 1, got {count}")
    if not 0 <= index < count:
        raise InputError(f"shard index must be in 0..{count - 1}, got {index}")
    return list(items[index::count])


class Shard(NamedTuple):
    """This process's shard: ``index`` of ``count``, and its ``local_rank`` (the device index on its node)."""

    index: int
    count: int
    local_rank: int


def _env_int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = env.get(name)
    if value is None:
        if default is None:
            raise InputError(f"environment variable {name} is not set")
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name} must be an integer, got {value!r}") from None


def shard_from_env(env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard a launcher assigned to this process, or None when not launched by one.

    torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) wins over SLURM (``SLURM_PROCID``,
    ``SLURM_NTASKS``, ``SLURM_LOCALID``), since torchrun inside a SLURM job sets both. A missing local
    rank means 0. Note that a plain ``sbatch --ntasks=N`` script not started through ``srun`` also sees
    SLURM_NTASKS: give such a run its shard explicitly.

    Raises:
        InputError: a variable that is not an integer, or a rank outside 0..count-1.
    """
    env = os.environ if env is None else env
    for rank, world, local in (
        ("RANK", "WORLD_SIZE", "LOCAL_RANK"),
        ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    ):
        if rank in env and world in env:
            shard = Shard(_env_int(env, rank), _env_int(env, world), _env_int(env, local, 0))
            if shard.count < 1 or not 0 <= shard.index < shard.count:
                raise InputError(f"{rank}={shard.index} is not a rank of {world}={shard.count}")
            return shard
    return None


def merge_results(paths: Iterable[str | os.PathLike]) -> list[PairScore]:
    """The scored pairs of several results files (shards, resumed runs), one per pair id, by pair id.

    A pair found in two files with the same predicted points is kept once.

    Raises:
        InputError: no paths.
        DataError: a file is missing or corrupt (see :func:`read_results`), or one pair id has two
            different predictions (the message names the pair and both files).
    """
    merged: dict[str, tuple[PairScore, Path]] = {}
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no results files to merge")
    for path in paths:
        for score in read_results(path):
            if score.pair_id not in merged:
                merged[score.pair_id] = (score, path)
                continue
            first, first_path = merged[score.pair_id]
            same = first.pred_xy.shape == score.pred_xy.shape and np.array_equal(
                first.pred_xy, score.pred_xy, equal_nan=True
            )
            if not same:
                raise DataError(
                    f"pair {score.pair_id!r} has different predictions in {first_path} and {path}"
                )
    return [merged[pair_id][0] for pair_id in sorted(merged)]
