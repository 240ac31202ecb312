"""Fitted embeddings and their safetensors file (never pickle)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from vidcorr.config import Config
from vidcorr.errors import EmbeddingsMismatchError, InputError
from vidcorr.io.atomic import atomic_path
from vidcorr.io.points import PointLabels

FORMAT = "vidcorr.embeddings/1"


@dataclass
class Embeddings:
    """Embeddings fitted for N points, R restarts each.

    tensors: (N, R, T, D) float32, T = 77 tokens, D = the UNet's cross_attention_dim.
    points: (N, 2) float64 x, y in the pixels of the image each point was fitted on.
    image_size_wh: (W, H) of that image.
    frames: (N,) int64 reference frame of each point (video), or None for a single image.
    config: the Config they were fitted with (image_size, layers and heads must match at locate).
    model_id, model_fingerprint: which model fitted them (LDM.model_id, LDM.fingerprint()).
    precision: how the fit computed (`vidcorr.fit.precision_name`: ``float32``, ``autocast-float16``, ...),
        or None where unknown (a file from an older vidcorr).
    skipped_steps: (N,) int64 fit steps each point skipped for a non-finite gradient, summed over its
        restarts (only autocast can skip), or None where unknown.
    labels: the frames and positions each point was fitted on (`PointLabels`: ids, and per point (K, 3)
        t, x, y), for embeddings fitted on a video's labels (`fit_labels`, `fit_queries`); None for an image
        fit or a file from an older vidcorr (then `frames` and `points` are the one label of each point).
        `points` and `frames` always hold each point's first label.
    """

    tensors: torch.Tensor
    points: np.ndarray
    image_size_wh: tuple[int, int]
    config: Config
    model_id: str
    model_fingerprint: str
    frames: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    precision: str | None = None
    skipped_steps: np.ndarray | None = None
    labels: PointLabels | None = None

    def __post_init__(self) -> None:
        if self.tensors.ndim != 4 or self.tensors.shape[0] != len(self.points):
            raise ValueError(f"tensors must be (N, R, T, D) with N = {len(self.points)} points, "
                             f"got {tuple(self.tensors.shape)}")
        if self.skipped_steps is not None:
            self.skipped_steps = np.asarray(self.skipped_steps, dtype=np.int64).reshape(-1)
            if len(self.skipped_steps) != len(self.points):
                raise ValueError(f"skipped_steps has {len(self.skipped_steps)} entries for {len(self.points)} points")
        if self.labels is not None and self.labels.num_points != len(self.points):
            raise ValueError(f"labels has {self.labels.num_points} points for {len(self.points)} embeddings")

    @property
    def total_skipped_steps(self) -> int:
        """Fit steps skipped over all points and restarts (0 where unknown)."""
        return 0 if self.skipped_steps is None else int(self.skipped_steps.sum())

    @property
    def num_points(self) -> int:
        return int(self.tensors.shape[0])

    @property
    def num_restarts(self) -> int:
        return int(self.tensors.shape[1])

    def check_compatible(self, ldm: Any, cfg: Config) -> None:
        """Raise EmbeddingsMismatchError unless these embeddings can be read with `ldm` and `cfg`."""
        fitted = self.config
        if self.model_fingerprint != ldm.fingerprint():
            raise EmbeddingsMismatchError(
                f"embeddings were fitted with model {self.model_id!r} (fingerprint {self.model_fingerprint}), "
                f"not with {ldm.model_id!r} (fingerprint {ldm.fingerprint()}); fit them again with this model")
        if self.tensors.shape[-1] != ldm.context_dim:
            raise EmbeddingsMismatchError(f"embeddings have width {self.tensors.shape[-1]}, the model takes "
                                          f"{ldm.context_dim}")
        for name in ("layers", "image_size", "heads", "token_index"):
            if getattr(fitted, name) != getattr(cfg, name):
                raise EmbeddingsMismatchError(
                    f"embeddings were fitted with {name}={_show(getattr(fitted, name))}, this run uses "
                    f"{name}={_show(getattr(cfg, name))}; fit again or use the same {name}")

    def subset(self, indices: np.ndarray | list[int]) -> Embeddings:
        """The embeddings of some points only (in the given order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Embeddings(self.tensors[torch.from_numpy(idx)], self.points[idx], self.image_size_wh, self.config,
                          self.model_id, self.model_fingerprint,
                          None if self.frames is None else self.frames[idx], dict(self.extra), self.precision,
                          None if self.skipped_steps is None else self.skipped_steps[idx],
                          None if self.labels is None else PointLabels(tuple(self.labels.ids[i] for i in idx),
                                                                       tuple(self.labels.labels[i] for i in idx)))

    def point_labels(self) -> PointLabels:
        """Every point's labels: `labels`, or one label per point (its frame and point) for a file without them.

        Raises:
            InputError: fitted on an image, not on a video's frames.
        """
        if self.labels is not None:
            return self.labels
        if self.frames is None:
            raise InputError("these embeddings were fitted on an image, not on a video's frames: they have no labels")
        return PointLabels.from_queries(np.column_stack([self.frames, self.points]))

    def save(self, path: str | os.PathLike) -> Path:
        """Write a safetensors file with the config, model, image size and points in its metadata.

        The labels, when known, are in the metadata too: ``labels`` is JSON ``{"ids": [...], "labels": [[[t, x, y],
        ...], ...]}``, one list of rows per point.
        """
        path = Path(path)
        tensors = {"embeddings": self.tensors.detach().to("cpu", torch.float32).contiguous(),
                   "points": torch.from_numpy(np.ascontiguousarray(self.points, dtype=np.float64))}
        if self.frames is not None:
            tensors["frames"] = torch.from_numpy(np.ascontiguousarray(self.frames, dtype=np.int64))
        if self.skipped_steps is not None:
            tensors["skipped_steps"] = torch.from_numpy(np.ascontiguousarray(self.skipped_steps, dtype=np.int64))
        metadata = {"format": FORMAT, "model_id": self.model_id, "model_fingerprint": self.model_fingerprint,
                    "image_size_wh": json.dumps(list(self.image_size_wh)), "config": self.config.to_json(),
                    "layers": json.dumps(list(self.config.layers)), "image_size": str(self.config.image_size),
                    "extra": json.dumps(self.extra), "precision": json.dumps(self.precision)}
        if self.labels is not None:
            metadata["labels"] = json.dumps({"ids": list(self.labels.ids),
                                             "labels": [rows.tolist() for rows in self.labels.labels]})
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    @staticmethod
    def load(path: str | os.PathLike) -> Embeddings:
        """Read a file written by `save`; InputError (one line) for anything else."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"embeddings file {str(path)!r} does not exist")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{str(path)!r} is not a safetensors embeddings file ({exc})") from None
        if metadata.get("format") != FORMAT or "embeddings" not in tensors:
            raise InputError(f"{str(path)!r} is not a vidcorr embeddings file (format {metadata.get('format')!r})")
        frames = tensors.get("frames")
        skipped = tensors.get("skipped_steps")
        return Embeddings(
            tensors=tensors["embeddings"], points=tensors["points"].numpy(),
            image_size_wh=tuple(json.loads(metadata["image_size_wh"])),
            config=Config.from_dict(json.loads(metadata["config"])), model_id=metadata["model_id"],
            model_fingerprint=metadata["model_fingerprint"],
            frames=None if frames is None else frames.numpy(), extra=json.loads(metadata.get("extra", "{}")),
            precision=json.loads(metadata.get("precision", "null")),
            skipped_steps=None if skipped is None else skipped.numpy(),
            labels=_labels(metadata.get("labels"), path))


def _labels(text: str | None, path: Path) -> PointLabels | None:
    if text is None:
        return None
    try:
        table = json.loads(text)
        return PointLabels(tuple(str(i) for i in table["ids"]),
                           tuple(np.asarray(rows, dtype=np.float64).reshape(-1, 3) for rows in table["labels"]))
    except (ValueError, KeyError, TypeError, InputError) as exc:
        raise InputError(f"{str(path)!r} has unreadable labels in its metadata ({exc})") from None


def _show(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
