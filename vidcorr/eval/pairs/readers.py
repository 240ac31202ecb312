"""The pair benchmarks' readers by name: one registry, so that a benchmark is added in one place."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidcorr.errors import InputError
from vidcorr.eval.pairs import cub, pfwillow, spair
from vidcorr.eval.pairs.pair import BENCHMARKS, Pair

READERS: dict[str, Callable[..., list[Pair]]] = {
    "spair": spair.read_pairs, "pfwillow": pfwillow.read_pairs, "cub": cub.read_pairs,
}
"""Benchmark name -> its ``read_pairs(data_root, split=..., categories=None, limit=None, pair_ids=None)``."""
assert tuple(READERS) == BENCHMARKS


def read_benchmark(
    benchmark: str,
    data_root: str | Path,
    *,
    split: str | None = None,
    categories: Sequence[str] | None = None,
    limit: int | None = None,
    pair_ids: Sequence[str] | None = None,
    **reader_options: Any,
) -> list[Pair]:
    """Pairs of `split` under `data_root`, read by `benchmark`'s own reader (:data:`READERS`), in its order.

    `split` None means the reader's default (the test split). Filters apply in this order: `categories`
    (keep those classes), `pair_ids` (keep those ids; an id the split lacks is an InputError), then `limit`
    (the first `limit` that remain). `reader_options` go to the reader as they are (CUB's ``num_classes``).
    """
    if benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    reader = READERS[benchmark]
    if split is not None:
        reader_options["split"] = split
    return reader(data_root, categories=categories, limit=limit, pair_ids=pair_ids, **reader_options)
