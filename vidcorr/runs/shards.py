"""Which share of a run's items this process takes: one rule for every command (eval, TAP-Vid, JHMDB, batches).

Placement: :func:`shard_of` splits items over n shards balanced by weight (greedy longest-processing-time;
a batch weighs its videos by frame count). With equal weights (the default) that is round robin: shard i
takes items i, i + n, i + 2n, ...

Resolution: :func:`resolve_shard` composes ``--shard i/n`` with a launcher's ranks (torchrun, srun). A SLURM
job array stands for ``--shard`` when none is given (:func:`array_shard`), so an array of jobs needs no
``--shard`` argument, whatever the command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, TypeVar

from vidcorr.errors import InputError

T = TypeVar("T")


class Shard(NamedTuple):
    """This process's shard: ``index`` of ``count``, and its ``local_rank`` (the device index on its node)."""

    # These names shadow tuple.index and tuple.count; the launcher's vocabulary is worth it.
    index: int  # type: ignore[assignment]
    count: int  # type: ignore[assignment]
    local_rank: int


def assign_shards(weights: Sequence[float], count: int) -> list[list[int]]:
    """Item indices per shard, `count` shards balanced by weight (greedy longest-processing-time).

    The items, heaviest first (ties: lower index first), each go to the shard with the least weight so far
    (ties: lower shard). Each shard lists its items in their original order. Every process computes the same
    split from the same weights; with equal weights it is round robin.

    Raises:
        InputError: count < 1, or a negative weight.
    """
    if count < 1:
        raise InputError(f"shard count must be >= 1, got {count}")
    if any(w < 0 for w in weights):
        raise InputError(f"shard weights must be >= 0, got {list(weights)}")
    load = [0.0] * count
    shards: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        target = min(range(count), key=lambda s: (load[s], s))
        shards[target].append(index)
        load[target] += weights[index]
    return [sorted(shard) for shard in shards]


def shard_of(items: Sequence[T], index: int, count: int, weights: Sequence[float] | None = None) -> list[T]:
    """Shard `index` of `count` of `items` (see :func:`assign_shards`; equal weights by default).

    The shards of 0..count-1 partition `items` and keep its order; pass a deterministic item list so that
    every process computes the same split.

    Raises:
        InputError: count < 1, index outside 0..count-1, or weights not one per item.
    """
    if count < 1:
        raise InputError(f"shard count must be >= 1, got {count}")
    if not 0 <= index < count:
        raise InputError(f"shard index must be in 0..{count - 1}, got {index}")
    if weights is not None and len(weights) != len(items):
        raise InputError(f"{len(weights)} shard weights for {len(items)} items")
    chosen = assign_shards([1.0] * len(items) if weights is None else weights, count)[index]
    return [items[i] for i in chosen]


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


def array_shard(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(index, count) of this job in a SLURM job array (``SLURM_ARRAY_TASK_ID`` of
    ``SLURM_ARRAY_TASK_COUNT``, counted from ``SLURM_ARRAY_TASK_MIN`` in steps of
    ``SLURM_ARRAY_TASK_STEP``), or None outside an array.

    Raises:
        InputError: variables that are not integers, or an array whose ids are not min, min + step, ...
    """
    env = os.environ if env is None else env
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    task, total = _env_int(env, "SLURM_ARRAY_TASK_ID"), _env_int(env, "SLURM_ARRAY_TASK_COUNT")
    first, step = _env_int(env, "SLURM_ARRAY_TASK_MIN", 0), _env_int(env, "SLURM_ARRAY_TASK_STEP", 1)
    offset = task - first
    if step < 1 or offset < 0 or offset % step or not 0 <= offset // step < total:
        raise InputError(f"SLURM array task {task} is not one of {total} tasks {first}, {first + step}, ...: "
                         "give the shard with --shard i/n")
    return offset // step, total


def resolve_shard(explicit: tuple[int, int] | None, env: Mapping[str, str] | None = None) -> Shard:
    """This process's shard from ``--shard`` (`explicit`), a SLURM job array and the launcher's ranks.

    Without ``--shard``, a SLURM job array's task stands for it. Under a launcher of W processes, shard
    ``i/n`` makes process r take shard ``i * W + r`` of ``n * W`` (an array of multi-GPU jobs); the
    launcher's local rank picks the GPU.

    Raises:
        InputError: malformed launcher or array variables (see :func:`shard_from_env`, :func:`array_shard`).
    """
    if explicit is None:
        explicit = array_shard(env)
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
    if not launched or device not in ("auto", "cuda"):
        return device
    # torch only here: placing a process needs no model stack, choosing its GPU does
    import torch

    if not torch.cuda.is_available():
        return device
    count = torch.cuda.device_count()
    if count == 1:
        return "cuda:0"
    if local_rank >= count:
        raise InputError(f"local rank {local_rank} has no GPU: this node has {count} CUDA device(s); "
                         f"start at most {count} processes per node")
    return f"cuda:{local_rank}"
