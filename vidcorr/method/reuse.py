"""Fit again only what changed: embeddings for new labels that keep, byte for byte, the embeddings of the points
whose labels did not change (the labelling loop: review, correct, track again).

`refit_changed` matches the new labels to the ones the earlier embeddings were fitted on
(`vidcorr.io.points.plan_reuse`: same id, same labels to the bit). Those points keep their earlier embedding
tensors and their confidence scale untouched, with no fit; every other point (a label added, moved or removed, a
new id) is fitted on all its labels (`fit_queries`: the joint fit), with the earlier embeddings' config, on the
random streams keyed by its place in the new labels, as a fresh fit of the new labels keys them. The embeddings
returned are in the new labels' point order and record which points were fitted again (``extra["refitted"]``, their
ids) and which were kept (``extra["reused"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vidcorr.errors import InputError
from vidcorr.io.points import PointLabels, ReusePlan, check_labels, plan_reuse
from vidcorr.io.video import open_video
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress
from vidcorr.method.model import LDM
from vidcorr.method.track import fit_queries

PER_POINT_EXTRAS = ("ref_attention", "label_ref_attention")
"""The `Embeddings.extra` entries with one value per point (kept with the point's embedding)."""


def refit_changed(ldm: LDM, video: Any, labels: PointLabels, earlier: Embeddings,
                  progress: Progress | None = None) -> tuple[Embeddings, ReusePlan]:
    """Embeddings for `labels` on `video`, reusing `earlier`'s for the points whose labels did not change.

    Args:
        ldm: the model `earlier` was fitted with (its fingerprint is checked).
        video: a path, a VideoReader, or a sequence of (H, W, 3) uint8 frames: the video `earlier` was fitted on.
        labels: the points' labels now (e.g. a reviewed points file).
        earlier: the embeddings fitted on the earlier labels (a track output's ``embeddings.safetensors``).
        progress: ``progress(stage, done, total)`` while the changed points are fitted.

    Returns:
        (the embeddings, in `labels`' point order, with `labels` recorded; the plan: which point kept which).

    Raises:
        InputError: `earlier` was fitted on an image or on another video. EmbeddingsMismatchError: another model.
    """
    earlier.check_compatible(ldm, earlier.config)
    reader = open_video(video)
    info = reader.info
    if earlier.frames is None or earlier.extra.get("video_size") != list(info.size) \
            or earlier.extra.get("video_frames") != info.num_frames:
        raise InputError("the embeddings to reuse were not fitted on this video "
                         f"({info.width}x{info.height}, {info.num_frames} frames): track it afresh")
    labels = check_labels(labels, info.num_frames, info.size)
    plan = plan_reuse(earlier.point_labels(), labels)
    refit = plan.refit
    fitted = None
    if len(refit):
        subset = PointLabels(tuple(labels.ids[i] for i in refit), tuple(labels.labels[i] for i in refit))
        fitted = fit_queries(ldm, reader, subset, earlier.config, progress=progress, point_ids=refit.tolist())
    return merge_embeddings(earlier, fitted, plan, labels), plan


def merge_embeddings(earlier: Embeddings, fitted: Embeddings | None, plan: ReusePlan,
                     labels: PointLabels) -> Embeddings:
    """One Embeddings in `labels`' point order: point n is `earlier`'s point ``plan.source[n]`` where that is >= 0,
    else the next point of `fitted` (the refitted points, in point order). Tensors are copied as they are."""
    kept, refit = plan.kept, plan.refit
    parts: list[tuple[Embeddings, np.ndarray]] = [(earlier, plan.source[kept])]
    if fitted is not None:
        parts.append((fitted, np.arange(len(refit))))
    rows = np.concatenate([kept, refit]) if fitted is not None else kept
    order = np.argsort(rows, kind="stable")  # from (kept..., refit...) back to point order
    tensors = torch.cat([e.tensors[torch.from_numpy(idx)] for e, idx in parts])[torch.from_numpy(order)]
    skipped = None
    if all(e.skipped_steps is not None for e, _ in parts):
        skipped = np.concatenate([e.skipped_steps[idx] for e, idx in parts])[order]  # type: ignore[index]
    extra: dict[str, Any] = {k: v for k, v in earlier.extra.items() if k not in PER_POINT_EXTRAS}
    for key in PER_POINT_EXTRAS:
        if all(key in e.extra for e, _ in parts):
            values = [e.extra[key][int(i)] for e, idx in parts for i in idx]
            extra[key] = [values[int(k)] for k in order]
    extra.update({"refitted": plan.refit_ids, "reused": [plan.ids[i] for i in kept]})
    precisions = {e.precision for e, idx in parts if len(idx)}
    precision = precisions.pop() if len(precisions) == 1 else \
        f"{earlier.precision} (reused), {fitted.precision if fitted is not None else None} (refitted)"
    first = labels.queries
    return Embeddings(tensors, first[:, 1:].copy(), earlier.image_size_wh, earlier.config, earlier.model_id,
                      earlier.model_fingerprint, first[:, 0].astype(np.int64), extra, precision, skipped,
                      PointLabels(labels.ids, labels.labels))
