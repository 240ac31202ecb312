"""Run folders: the one loop over independent items (benchmark pairs, TAP-Vid videos, a batch's videos).

A run folder holds the results of many independent items, computed by any number of processes::

    <out>/run.json                                  the run's identity (setup), checked on resume
    <out>/<prefix>.jsonl                            records of an unsharded run
    <out>/<prefix>-shard<i>of<n>.jsonl              records of shard i of n (i zero-padded)

What is shared by every kind of run lives here, once:

- identity: :func:`check_setup` writes ``run.json`` or refuses, in one line naming what differs, to resume
  a run made with other settings;
- shards: this process's share of the items (:mod:`vidcorr.runs.shards`, one rule for every command);
- records: a :class:`RecordKind` says how one kind stores a record as a JSON line, what its key is and what
  counts as the same prediction; :class:`JsonLinesWriter` appends one durable (flushed, fsynced) line per
  record and cuts off a half-written last line; reading drops only such a last line;
- pending/finished and resume: an item is finished once ANY records file of the folder holds its key,
  whatever shard layout wrote it, so a run may be resumed with another shard count;
- merge: records of several files, one per key, two different predictions for one key an error;
- the loop itself, with progress: :func:`run_items`;
- per-item file names that any file system takes: :func:`vidcorr.io.names.safe_name`.

Each kind contributes only what is its own: how to read its items, predict and score one (the ``process``
callable of :func:`run_items`), and how to summarise records (a :class:`RunningSummary`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from vidcorr._version import __version__
from vidcorr.config import setting_differences
from vidcorr.errors import DataError, InputError
from vidcorr.io.atomic import write_json
from vidcorr.io.names import RUN_FILE
from vidcorr.runs.shards import shard_of

IGNORED_SETUP_KEYS = ("vidcorr_version",)
"""Setup keys that do not change results: two runs differing only there are the same run."""

R = TypeVar("R")
T = TypeVar("T")


# --------------------------------------------------------------------------------------------- identity


EXECUTION_FIELDS = ("max_batch", "stop_early")
"""Config fields that change how a run computes, not what (micro-batch size, early stop)."""


def model_setup(ldm: Any, cfg: Any, *, execution_fields: bool = False) -> dict[str, Any]:
    """The model's part of a run's identity (``run.json``): the model's id and fingerprint, dtype and autocast, the
    config at the model's native size (``image_size`` None recorded as what it resolves to) without the
    :data:`EXECUTION_FIELDS` unless `execution_fields`, and vidcorr's version."""
    config = cfg.at_size(ldm.native_image_size).to_dict()
    return {"model": ldm.model_id, "model_fingerprint": ldm.fingerprint(),
            "dtype": str(ldm.dtype).removeprefix("torch."), "autocast": ldm.autocast_name,
            "config": config if execution_fields else {k: v for k, v in config.items() if k not in EXECUTION_FIELDS},
            "vidcorr_version": __version__}


def setup_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two setups (``key old there, new now``), :data:`IGNORED_SETUP_KEYS` left out."""
    return setting_differences({k: v for k, v in old.items() if k not in IGNORED_SETUP_KEYS},
                               {k: v for k, v in new.items() if k not in IGNORED_SETUP_KEYS})


def read_setup(out_dir: str | os.PathLike) -> dict[str, Any] | None:
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


def check_setup(out_dir: str | os.PathLike, setup: Mapping[str, Any]) -> None:
    """Write `setup` as ``run.json``, or check that the folder's existing one matches it.

    Raises:
        InputError: the folder holds a run with other settings (the message lists what differs).
    """
    out_dir = Path(out_dir)
    existing = read_setup(out_dir)
    wanted = json.loads(json.dumps(dict(setup)))  # JSON's view: tuples become lists
    if existing is not None:
        differ = setup_differences(existing, wanted)
        if differ:
            shown = "; ".join(differ[:3]) + ("; ..." if len(differ) > 3 else "")
            raise InputError(f"{out_dir} holds a run with other settings ({shown}); resume it with the same "
                             "options or choose another --out")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / RUN_FILE, wanted, sort_keys=True)


def setups_by(folders: Iterable[Path], group: Callable[[dict[str, Any]], Hashable | None]) -> dict[Hashable, dict]:
    """group -> the ``run.json`` of `folders` in that group (``group(setup)``; None skips a setup).

    Raises:
        DataError: two folders of one group whose setups differ (they must be reported separately).
    """
    found: dict[Hashable, tuple[dict[str, Any], Path]] = {}
    for folder in dict.fromkeys(folders):
        setup = read_setup(folder)
        key = None if setup is None else group(setup)
        if setup is None or key is None:
            continue
        if key in found:
            first, first_folder = found[key]
            if setup_differences(first, setup):
                raise DataError(f"{first_folder / RUN_FILE} and {folder / RUN_FILE} describe different runs; "
                                "report them separately")
            continue
        found[key] = (setup, folder)
    return {key: setup for key, (setup, _) in found.items()}


# --------------------------------------------------------------------------------------------- records


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


class JsonLinesWriter(Generic[R]):
    """Append records to a JSON-lines file, one durable line per record.

    Each :meth:`write` appends `to_json(record)` as a line, flushes it and fsyncs the file
    (``fsync=False`` skips the fsync, for tests or file systems where it is slow). Opening cuts off a
    half-written last line left by a killed run (one `parse_line` rejects). Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, to_json: Callable[[R], dict[str, Any]],
                 parse_line: Callable[[bytes], object], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _repair_tail(self.path, parse_line)
        self._to_json = to_json
        self._fsync = fsync
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: R) -> None:
        """Append `record` as one line and make it durable before returning."""
        self._file.write(json.dumps(self._to_json(record), separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> JsonLinesWriter[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class RecordKind(Generic[R]):
    """How one kind of run stores its per-item records.

    Attributes:
        prefix: records files are ``<prefix>.jsonl`` and ``<prefix>-shard<i>of<n>.jsonl``.
        noun: what a line is, for errors (``results line``, ``TAP-Vid results line``).
        to_json: a record -> its JSON object (one line).
        from_json: a parsed JSON object -> a record; ValueError if it is not one.
        key: a record's item key (unique within a run).
        fingerprint: equal for two records of one key exactly when they hold the same prediction.
        describe: a record -> how errors name its item (``pair '000001-...'``).
    """

    prefix: str
    noun: str
    to_json: Callable[[R], dict[str, Any]]
    from_json: Callable[[Any], R]
    key: Callable[[R], Hashable]
    fingerprint: Callable[[R], Any]
    describe: Callable[[R], str]

    def parse_line(self, raw: bytes) -> R:
        """One line's record; ValueError or UnicodeDecodeError if the line is not one."""
        return self.from_json(json.loads(raw.decode("utf-8")))

    def results_path(self, out_dir: str | os.PathLike, shard: tuple[int, int]) -> Path:
        """``<prefix>.jsonl`` for one shard of one, else ``<prefix>-shard<i>of<n>.jsonl`` (zero-padded)."""
        index, count = shard
        if count == 1:
            return Path(out_dir) / f"{self.prefix}.jsonl"
        width = len(str(count - 1))
        return Path(out_dir) / f"{self.prefix}-shard{index:0{width}d}of{count}.jsonl"

    @property
    def glob(self) -> str:
        """The file-name pattern of this kind's records files."""
        return f"{self.prefix}*.jsonl"

    def results_files(self, out_dir: str | os.PathLike) -> list[Path]:
        """Every records file of this kind in a run folder, sorted."""
        return sorted(p for p in Path(out_dir).glob(self.glob) if p.is_file())

    def writer(self, path: str | os.PathLike, *, fsync: bool = True) -> JsonLinesWriter[R]:
        """A writer appending one durable line per record to `path`."""
        return JsonLinesWriter(path, self.to_json, self.parse_line, fsync=fsync)

    def read(self, path: str | os.PathLike) -> list[R]:
        """All records of a file, in file order.

        An unparseable last line (a run killed mid-write) is dropped; blank lines are skipped.

        Raises:
            DataError: the file does not exist, or a line other than the last is not a record (the message
                names the file and the 1-based line number).
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: results file not found")
        lines = [(n, raw) for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1) if raw.strip()]
        records = []
        for position, (line_no, raw) in enumerate(lines):
            try:
                records.append(self.parse_line(raw))
            except (ValueError, UnicodeDecodeError) as exc:
                if position == len(lines) - 1:
                    break
                raise DataError(f"{path}:{line_no}: not a {self.noun} ({exc})") from None
        return records

    def finished(self, out_dir: str | os.PathLike) -> dict[Hashable, R]:
        """key -> record of every item some records file of the folder holds (first occurrence)."""
        found: dict[Hashable, R] = {}
        for path in self.results_files(out_dir):
            for record in self.read(path):
                found.setdefault(self.key(record), record)
        return found

    def pending(self, keys: Sequence[T], out_dir: str | os.PathLike, shard: tuple[int, int] = (0, 1),
                key: Callable[[T], Hashable] = lambda item: item) -> list[T]:
        """The items of shard `shard` of `keys` that no records file of `out_dir` holds yet (what a run would
        compute); `key` maps an item to its record key."""
        done = self.finished(out_dir)
        return [item for item in shard_of(list(keys), *shard) if key(item) not in done]

    def merge(self, paths: Iterable[str | os.PathLike]) -> list[R]:
        """The records of several files (shards, resumed runs), one per key, sorted.

        A key found twice with the same prediction (``fingerprint``) is kept once.

        Raises:
            InputError: no paths.
            DataError: a missing or corrupt file (see :meth:`read`), or one key with two different predictions
                (the message names the item and both files).
        """
        files = [Path(p) for p in paths]
        if not files:
            raise InputError("no results files to merge")
        merged: dict[Hashable, tuple[R, Path]] = {}
        for path in files:
            for record in self.read(path):
                key = self.key(record)
                if key not in merged:
                    merged[key] = (record, path)
                    continue
                first, first_path = merged[key]
                if self.fingerprint(first) != self.fingerprint(record):
                    raise DataError(f"{self.describe(record)} has different predictions in {first_path} and {path}")
        return [merged[key][0] for key in sorted(merged)]  # type: ignore[type-var]

    def holds(self, path: str | os.PathLike) -> bool:
        """Whether a records file is of this kind: judged by its first line, or by its name while that line
        is missing or not JSON."""
        path = Path(path)
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    try:
                        obj = json.loads(raw.decode("utf-8"))
                    except (ValueError, UnicodeDecodeError):
                        break
                    try:
                        self.from_json(obj)
                    except ValueError:
                        return False
                    return True
        return path.name.startswith(self.prefix)


# --------------------------------------------------------------------------------------------- the loop


R_in = TypeVar("R_in", contravariant=True)


class RunningSummary(Protocol[R_in]):
    """A kind's summary of the records finished so far, for progress (running PCK, mean AJ, ...)."""

    def add(self, record: R_in) -> None: ...

    def values(self) -> dict[Any, float]: ...


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands, passed to the progress callback after each item (and once before the first).

    Attributes:
        done: items of this shard finished, those finished by earlier runs included.
        total: items of this shard.
        resumed: items finished before this run started.
        item: the item just finished (its key as text); None on the first call.
        seconds: wall time of that item; None on the first call.
        running: the kind's summary of the finished items of this shard (see :class:`RunningSummary`);
            empty while none is finished.
    """

    done: int
    total: int
    resumed: int
    item: str | None
    seconds: float | None
    running: dict[Any, float]


@dataclass(frozen=True)
class RunOutcome(Generic[R]):
    """The outcome of :func:`run_items`.

    Attributes:
        results_path: this shard's records file.
        shard: (index, count) this process ran.
        total: items of this shard; resumed: finished before the run; evaluated: computed by this run.
        records: the records of this shard's items, in item order (resumed ones included).
        elsewhere: keys of items `process` left to another process (it returned None), in order.
    """

    results_path: Path
    shard: tuple[int, int]
    total: int
    resumed: int
    evaluated: int
    records: list[R] = field(default_factory=list)
    elsewhere: list[Hashable] = field(default_factory=list)

    @property
    def scores(self) -> list[R]:
        """The records (the benchmarks' name for them)."""
        return self.records


def _kept(kind: RecordKind[R], out_dir: Path, redo: Callable[[R], bool]) -> dict[Hashable, R]:
    """key -> the first record of each key that is not to be redone (see :func:`run_items`)."""
    found: dict[Hashable, R] = {}
    for path in kind.results_files(out_dir):
        for record in kind.read(path):
            if not redo(record):
                found.setdefault(kind.key(record), record)
    return found


@dataclass(frozen=True)
class Items(Generic[T]):
    """A run's items, as the run loop needs them.

    Attributes:
        keys: every item's key, in the data's deterministic order (every shard must get the same list).
        read: called once, with the keys still to do, if any; yields the items (lazily, if it likes) in any
            order and may yield others, which are skipped. Reading stops once every pending item is done.
        key: an item -> its key.
        name: a key -> how progress and errors name its item.
        source, noun: how an error names where the items come from, and what they are.
        mine: this shard's keys, in order, where the kind assigns items to shards its own way (a batch of videos
            balances them by frame count); default: ``shard_of(keys, *shard)``.
    """

    keys: Sequence[Hashable]
    read: Callable[[set[Hashable]], Iterable[T]]
    key: Callable[[T], Hashable]
    name: Callable[[Hashable], str] = str
    source: str = "the data"
    noun: str = "items"
    mine: Sequence[Hashable] | None = None


def run_items(kind: RecordKind[R], out_dir: str | os.PathLike, items: Items[T], process: Callable[[T], R | None], *,
              shard: tuple[int, int] = (0, 1), summary: RunningSummary[R] | None = None,
              progress: Callable[[RunProgress], None] | None = None, fsync: bool = True,
              redo: Callable[[R], bool] | None = None) -> RunOutcome[R]:
    """Run shard `shard` of `items` into the run folder `out_dir` (its ``run.json`` checked by the caller with
    :func:`check_setup`), resuming what is there.

    Args:
        kind: how records are stored.
        out_dir: the run folder.
        items: the items, how to read and name them (:class:`Items`).
        process: an item -> its record (predict and score); its wall time is measured. None: another process
            has the item (a claim, see ``runs.claims``): no record is written and it is not waited for.
        shard: (index, count) of this process; it names the records file.
        summary: fed every finished record of this shard, for `progress`.
        progress: called once before the first item and after each one (a KeyboardInterrupt raised there
            stops the run with every finished item saved).
        fsync: fsync each appended line (off for tests).
        redo: records for which this is true do not count as finished: their item is computed again and
            its new record appended (a batch retries the videos that failed).

    Returns:
        The :class:`RunOutcome`. Raises whatever `process` raises; the items finished before stay saved.

    Raises:
        DataError: `items.read` ended with items still pending.
    """
    out_dir = Path(out_dir)
    mine = shard_of(list(items.keys), *shard) if items.mine is None else list(items.mine)
    path = kind.results_path(out_dir, shard)
    with kind.writer(path, fsync=fsync) as writer:
        # Read after the writer repaired this shard's own tail.
        finished = kind.finished(out_dir) if redo is None else _kept(kind, out_dir, redo)
        loop = _ItemLoop(mine, {key: finished[key] for key in mine if key in finished}, summary, progress)
        loop.report(None, None)
        todo = loop.todo()
        for item in items.read(set(todo)) if todo else ():
            key = items.key(item)
            if key in todo:
                loop.run(key, item, process, writer, items.name)
                todo.discard(key)
                if not todo:
                    break
    if todo:
        raise DataError(f"{items.source}: {items.noun} {', '.join(sorted(items.name(k) for k in todo))} were listed "
                        "but not read")
    ordered = [loop.records[key] for key in mine if key in loop.records]
    return RunOutcome(path, (shard[0], shard[1]), len(mine), loop.resumed, len(ordered) - loop.resumed, ordered,
                      [key for key in mine if key in loop.elsewhere])


class _ItemLoop(Generic[R]):
    """This shard's records as the loop fills them, and its progress reports."""

    def __init__(self, mine: list[Hashable], resumed: dict[Hashable, R], summary: RunningSummary[R] | None,
                 progress: Callable[[RunProgress], None] | None) -> None:
        self.mine, self.records, self.summary, self.progress = mine, dict(resumed), summary, progress
        self.resumed = len(resumed)
        self.elsewhere: set[Hashable] = set()  # left to another process
        if summary is not None:
            for record in resumed.values():
                summary.add(record)

    def todo(self) -> set[Hashable]:
        return {key for key in self.mine if key not in self.records and key not in self.elsewhere}

    def report(self, item: str | None, seconds: float | None) -> None:
        if self.progress is not None:
            running = self.summary.values() if self.summary is not None and self.records else {}
            self.progress(RunProgress(len(self.records), len(self.mine), self.resumed, item, seconds, running))

    def run(self, key: Hashable, item: Any, process: Callable[[Any], R | None], writer: JsonLinesWriter[R],
            name: Callable[[Hashable], str]) -> None:
        """Process one item, append its record durably, report (nothing where another process has it)."""
        start = time.perf_counter()
        record = process(item)
        seconds = time.perf_counter() - start
        if record is None:
            self.elsewhere.add(key)
            return
        writer.write(record)
        self.records[key] = record
        if self.summary is not None:
            self.summary.add(record)
        self.report(name(key), seconds)


@dataclass(frozen=True)
class RunOptions:
    """How a run goes, beside what it runs: the options of ``run_eval`` (pairs), ``run_tapvid`` and ``run_jhmdb``.

    Attributes:
        shard: (index, count) of this process; it names the results file.
        setup: written to ``run.json``, or compared with the one there (:func:`check_setup`); None:
            neither.
        progress: called once before the first item and after each one (a KeyboardInterrupt raised there stops
            the run with every finished item saved).
        fsync: fsync each results line (off for tests).
    """

    shard: tuple[int, int] = (0, 1)
    setup: Mapping[str, Any] | None = None
    progress: Callable[[RunProgress], None] | None = None
    fsync: bool = True

    def run_items(self, kind: RecordKind[R], out_dir: str | os.PathLike, items: Items[T], process: Callable[[T], R],
                  summary: RunningSummary[R]) -> RunOutcome[R]:
        """Check ``run.json`` against `setup` (if given), then :func:`run_items` with these options."""
        if self.setup is not None:
            check_setup(out_dir, self.setup)
        return run_items(kind, out_dir, items, process, shard=self.shard, summary=summary, progress=self.progress,
                         fsync=self.fsync)
