"""Shards: one placement (weighted longest-processing-time, round robin for equal weights) and one resolution
(--shard, SLURM arrays, torchrun/srun ranks) for every command."""

from __future__ import annotations

import numpy as np
import pytest

from vidcorr.errors import InputError
from vidcorr.runs.shards import Shard, array_shard, assign_shards, resolve_shard, shard_of


def test_longest_processing_time_by_hand():
    # Longest first: 50 (video 1) -> shard 0; 40 (4) -> 1; 20 (2) -> 1 (40 < 50); 20 (3) -> 0 (50 < 60);
    # 10 (0) -> 1 (60 < 70); 5 (5) -> 0 (70 = 70: the lower shard). Loads 75 and 70.
    assert assign_shards([10, 50, 20, 20, 40, 5], 2) == [[1, 3, 5], [0, 2, 4]]
    # A round-robin by position would give 80 and 65.
    assert assign_shards([10, 50, 20, 20, 40, 5], 1) == [[0, 1, 2, 3, 4, 5]]
    assert assign_shards([3, 3, 3], 5) == [[0], [1], [2], [], []]
    assert assign_shards([], 2) == [[], []]


def test_shards_partition_the_batch_and_balance_frames():
    counts = [int(c) for c in np.random.default_rng(0).integers(1, 1000, 40)]
    shards = assign_shards(counts, 4)
    assert sorted(i for s in shards for i in s) == list(range(40))
    loads = [sum(counts[i] for i in s) for s in shards]
    assert max(loads) - min(loads) <= max(counts)  # LPT's bound: within one video of each other
    videos = [f"v{i}" for i in range(40)]
    assert shard_of(videos, 2, 4, weights=counts) == [videos[i] for i in shards[2]]


def test_bad_shard_counts():
    with pytest.raises(InputError, match=r"^shard count must be >= 1, got 0$"):
        assign_shards([1], 0)
    with pytest.raises(InputError, match=r"^shard index must be in 0\.\.1, got 2$"):
        shard_of(["a"], 2, 2, weights=[1])


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "16"}, (3, 16)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "16", "SLURM_ARRAY_TASK_MIN": "1"}, (0, 16)),
    ({"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "10",
      "SLURM_ARRAY_TASK_STEP": "2"}, (2, 4)),
])
def test_array_shard(env, expected):
    assert array_shard(env) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"},
     "environment variable SLURM_ARRAY_TASK_ID must be an integer, got 'x'"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_STEP": "2"},
     "SLURM array task 5 is not one of 3 tasks 0, 2, ...: give the shard with --shard i/n"),
])
def test_bad_array_variables(env, message):
    with pytest.raises(InputError) as err:
        array_shard(env)
    assert str(err.value) == message


def test_one_resolution_for_every_command_composes_arrays_and_ranks():
    array = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "16"}
    torchrun = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}
    assert resolve_shard(None, {}) == Shard(0, 1, 0)
    assert resolve_shard((1, 2), {}) == Shard(1, 2, 0)
    assert resolve_shard(None, torchrun) == Shard(1, 4, 1)
    assert resolve_shard(None, {**array, **torchrun}) == Shard(3 * 4 + 1, 64, 1)  # array job 3 of 16, rank 1 of 4
    assert resolve_shard((0, 2), {**array, **torchrun}) == Shard(1, 8, 1)  # --shard wins over the array


def test_equal_weights_are_round_robin():
    items = list(range(11))
    for count in (1, 2, 3, 4, 11, 13):
        for index in range(count):
            assert shard_of(items, index, count) == items[index::count]


def test_a_slurm_array_stands_for_shard_in_eval_too():
    # Before the merge only `track` batches read the array; `vidcorr eval` needed --shard spelled out.
    array = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "16"}
    assert resolve_shard(None, array) == Shard(3, 16, 0)
    assert shard_of(list(range(40)), *resolve_shard(None, array)[:2]) == [3, 19, 35]
