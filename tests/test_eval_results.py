"""Results files: durable lines, truncated tails, resuming, sharding by position and merging shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_pairs import memory_pair

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs.pck import PairScore, score_pair, summarize
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr.runs.shards import Shard, shard_from_env, shard_of


def _pairs(n: int = 7) -> list:
    """n SPair-like pairs in two categories with two occlusion levels; trg keypoints 10 px apart."""
    return [
        memory_pair(
            f"{i:06d}-a-b:{'cat' if i % 3 == 0 else 'dog'}",
            category="cat" if i % 3 == 0 else "dog",
            src_size=(640, 480),
            trg_size=(320, 240 + i),
            src_kps=[[10.0, 10.0], [20.0, 20.0]],
            trg_kps=[[100.0, 100.0], [110.0, 100.0]],
            src_bbox=(0.0, 0.0, 300.0, 200.0),
            trg_bbox=(0.0, 0.0, 100.0 + 10 * i, 80.0),
            flags={"occlusion": i % 2, "truncation": 0},
        )
        for i in range(n)
    ]


def _predict(pair) -> np.ndarray:
    """A deterministic 'model': keypoint 0 off by 7.3 px in x, keypoint 1 off by 0.4 px in y."""
    return pair.trg_kps + np.array([[7.3, 0.0], [0.0, 0.4]])


def _scores(pairs: list) -> list[PairScore]:
    return [score_pair(p, _predict(p), extra={"seconds": 1.5}) for p in pairs]


def _write(path: Path, scores: list[PairScore]) -> Path:
    with PAIR_RECORDS.writer(path, fsync=False) as writer:
        for score in scores:
            writer.write(score)
    return path


def test_lines_round_trip_exactly(tmp_path: Path) -> None:
    scores = _scores(_pairs(3))
    path = _write(tmp_path / "run" / "results.jsonl", scores)
    assert len(path.read_text().splitlines()) == 3
    back = PAIR_RECORDS.read(path)
    assert [s.pair_id for s in back] == [s.pair_id for s in scores]
    for before, after in zip(scores, back, strict=True):
        np.testing.assert_array_equal(after.pred_xy, before.pred_xy)  # repr floats: bit-exact
        np.testing.assert_array_equal(after.true_xy, before.true_xy)
        assert after.thresholds == before.thresholds
        for name in ("official", "seed"):
            np.testing.assert_array_equal(after.correct[name], before.correct[name])
        assert (after.category, after.dataset, after.alphas) == (before.category, "spair", (0.05, 0.1))
        assert after.flags == before.flags and after.extra == {"seconds": 1.5}
        assert after.trg_size == before.trg_size


def test_a_truncated_last_line_is_dropped_and_only_the_last(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", _scores(_pairs(3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # kill mid-way through the third line
    assert [s.pair_id for s in PAIR_RECORDS.read(path)] == [p.pair_id for p in _pairs(2)]
    lines = data.decode().splitlines()
    path.write_text("\n".join([lines[0], lines[1][:25], lines[2]]) + "\n")
    with pytest.raises(DataError) as info:
        PAIR_RECORDS.read(path)
    assert f"{path}:2:" in str(info.value)
    with pytest.raises(DataError, match="not found"):
        PAIR_RECORDS.read(tmp_path / "missing.jsonl")


def test_kill_after_k_pairs_then_resume_gives_each_pair_exactly_once(tmp_path: Path) -> None:
    pairs, path, k = _pairs(6), tmp_path / "r.jsonl", 4
    _write(path, _scores(pairs[:k]))
    with path.open("a") as handle:  # the (k+1)-th line, half written when the process died
        handle.write('{"v":1,"pair_id":"' + pairs[k].pair_id + '","categ')
    done = {s.pair_id for s in PAIR_RECORDS.read(path)}
    assert done == {p.pair_id for p in pairs[:k]}
    remaining = [p for p in pairs if p.pair_id not in done]
    assert [p.pair_id for p in remaining] == [p.pair_id for p in pairs[k:]]
    _write(path, _scores(remaining))  # the writer cuts the half line before appending
    back = PAIR_RECORDS.read(path)
    assert [s.pair_id for s in back] == [p.pair_id for p in pairs]
    assert len(path.read_text().splitlines()) == len(pairs)
    assert PAIR_RECORDS.finished(tmp_path / "not-started") == {}


def test_shard_of_splits_by_position() -> None:
    items = list(range(10))
    assert shard_of(items, 0, 3) == [0, 3, 6, 9]
    assert shard_of(items, 1, 3) == [1, 4, 7]
    assert shard_of(items, 2, 3) == [2, 5, 8]
    assert shard_of(items, 0, 1) == items
    assert sorted(x for i in range(4) for x in shard_of(items, i, 4)) == items
    with pytest.raises(InputError, match="0..2, got 3"):
        shard_of(items, 3, 3)
    with pytest.raises(InputError, match=">= 1"):
        shard_of(items, 0, 0)


def test_three_shards_merged_equal_one_unsharded_run(tmp_path: Path) -> None:
    pairs = _pairs(7)
    unsharded = _scores(pairs)
    paths = [_write(tmp_path / f"shard{i}.jsonl", _scores(shard_of(pairs, i, 3))) for i in range(3)]
    assert [len(PAIR_RECORDS.read(p)) for p in paths] == [3, 2, 2]
    merged = PAIR_RECORDS.merge(paths)
    assert [s.pair_id for s in merged] == sorted(p.pair_id for p in pairs)
    for protocol in ("official", "seed"):
        assert summarize(merged, protocol) == summarize(unsharded, protocol)
    # Hand check of the official numbers: keypoint 0 is 7.3 px off against a target box side of 100 + 10i,
    # correct at alpha 0.1 for i >= 0 (7.3 <= 10) and at 0.05 only for i >= 5 (7.3 <= 7.5); keypoint 1 is
    # 0.4 px off: always correct. Per-image @0.05: (5 * 0.5 + 2 * 1) / 7; @0.10: all pairs at 1.
    official = summarize(merged, "official").overall
    assert official.per_image == pytest.approx((100 * 4.5 / 7, 100.0))
    assert official.per_keypoint == pytest.approx((100 * 9 / 14, 100.0))


def test_merge_keeps_identical_duplicates_and_rejects_conflicts(tmp_path: Path) -> None:
    pairs = _pairs(3)
    first = _write(tmp_path / "a.jsonl", _scores(pairs))
    again = _write(tmp_path / "b.jsonl", _scores(pairs[1:]))
    assert [s.pair_id for s in PAIR_RECORDS.merge([first, again])] == [p.pair_id for p in pairs]
    moved = score_pair(pairs[2], pairs[2].trg_kps)
    conflict = _write(tmp_path / "c.jsonl", [moved])
    with pytest.raises(DataError) as info:
        PAIR_RECORDS.merge([first, conflict])
    message = str(info.value)
    assert pairs[2].pair_id in message and "a.jsonl" in message and "c.jsonl" in message
    with pytest.raises(InputError, match="no results"):
        PAIR_RECORDS.merge([])


def test_shard_from_env_torchrun_slurm_and_none() -> None:
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Shard(2, 4, 1)
    assert shard_from_env({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "3"}) == (5, 8, 3)
    both = {"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "16", "SLURM_LOCALID": "0"}
    assert shard_from_env(both) == Shard(1, 2, 0)  # torchrun wins; missing LOCAL_RANK means 0
    assert shard_from_env({"PATH": "/usr/bin"}) is None
    assert shard_from_env({"RANK": "0"}) is None
    with pytest.raises(InputError, match="WORLD_SIZE must be an integer, got 'four'"):
        shard_from_env({"RANK": "0", "WORLD_SIZE": "four"})
    with pytest.raises(InputError, match="SLURM_PROCID=4"):
        shard_from_env({"SLURM_PROCID": "4", "SLURM_NTASKS": "4"})
