"""The pipeline behind ``vidcorr match``: one image pair, inputs checked, the method run, outputs written.

``prepare_match`` reads and checks the two images, the points and the output folder and builds the config (no
model); ``run_match`` fits on the source, locates on the target and writes ``matches.json``, ``matches.csv``,
``matches.jpg`` (and ``vis/`` with ``visualize``) through one :class:`~vidcorr.io.outputs.OutputFolder`;
:func:`match` does both.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr import memory
from vidcorr.config import Config, config_for
from vidcorr.io.atomic import atomic_path, write_json
from vidcorr.io.images import read_image, write_image
from vidcorr.io.names import MATCHES_CSV, MATCHES_IMAGE, MATCHES_JSON, VIEW_INDEX, VIS_DIR
from vidcorr.io.outputs import OutputFolder
from vidcorr.io.points import check_points
from vidcorr.io.render import side_by_side
from vidcorr.io.staging import check_output, staged_file
from vidcorr.method.correspond import correspond
from vidcorr.method.embeddings import Embeddings
from vidcorr.method.fit import Progress
from vidcorr.method.locate import Location
from vidcorr.method.model import LDM
from vidcorr.method.plan import prepare
from vidcorr.web.visuals import MatchedImage, write_match_visuals


@dataclass(frozen=True)
class MatchJob:
    """A checked ``match`` run (see :func:`prepare_match`).

    Attributes:
        source, target: the image files; src_image, trg_image: uint8 (H, W, 3) RGB.
        src_xy: float64 (K, 2) x, y source points, inside the source image.
        cfg: the config. out: the output folder (checked, not created yet).
        visualize: also write ``vis/`` for ``vidcorr view``. save_embeddings: also write the embeddings here.
    """

    source: Path
    target: Path
    src_image: np.ndarray
    trg_image: np.ndarray
    src_xy: np.ndarray
    cfg: Config
    out: OutputFolder
    visualize: bool = False
    save_embeddings: Path | None = None


@dataclass(frozen=True)
class MatchResult:
    """What :func:`run_match` found and wrote.

    Attributes:
        src_xy: float64 (K, 2) the source points; trg_xy: float64 (K, 2) where they were found on the target,
            x, y in the target's pixels; confidence: float (K,) in [0, 1].
        embeddings: the fitted embeddings.
        record: the content of ``matches.json``.
        out_dir: the output folder; written: the files written, in order.
    """

    src_xy: np.ndarray
    trg_xy: np.ndarray
    confidence: np.ndarray
    embeddings: Embeddings
    record: dict[str, Any]
    out_dir: Path
    written: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class MatchOptions:
    """What a ``match`` run writes, as one object: the keyword options of :func:`match`, taken by
    :func:`prepare_match` and built by the CLI.

    Attributes:
        out: the output folder (None: ``<source stem>-<target stem>_vidcorr``).
        visualize: also write ``vis/`` for ``vidcorr view``.
        save_embeddings: also write the fitted embeddings to this file (None: not).
        overwrite: replace an earlier run in `out` (whole) and the embeddings file, instead of refusing.
    """

    out: str | os.PathLike | None = None
    visualize: bool = False
    save_embeddings: str | os.PathLike | None = None
    overwrite: bool = False


def prepare_match(source: str | os.PathLike, target: str | os.PathLike, points: np.ndarray, *,
                  preset: str | None = None, overrides: Mapping[str, Any] | None = None,
                  options: MatchOptions | None = None, overwrite_hint: str = "overwrite=True",
                  model: str | None = None) -> MatchJob:
    """Read both images, check the points (N, 2) against the source, build the config, check the output
    folder and the embeddings file of `options` (:class:`MatchOptions`; None: its defaults); no model work.

    `overwrite_hint` is how the caller's user asks to overwrite, for the refusal's message (the CLI:
    "--overwrite"). `model` (its name) sizes the memory check before it loads (`vidcorr.memory.model_floor`).

    Raises:
        InputError: an unreadable image, a point outside the source, a bad option or output folder, an
            existing output without ``options.overwrite``, a run that cannot fit in memory (one line with the
            estimate).
    """
    source, target, options = Path(source), Path(target), options or MatchOptions()
    out, save_embeddings, overwrite = options.out, options.save_embeddings, options.overwrite
    folder = OutputFolder(out if out is not None else Path(f"{source.stem}-{target.stem}_vidcorr"),
                          overwrite=overwrite, overwrite_hint=overwrite_hint)
    if save_embeddings is not None:
        check_output(save_embeddings, folder=False, overwrite=overwrite, overwrite_hint=overwrite_hint)
    src_image, trg_image = read_image(source), read_image(target)
    src_xy = check_points(points, (src_image.shape[1], src_image.shape[0]), name=f"source image {source.name}")
    cfg = config_for(preset, overrides)
    floor = memory.model_floor(model)
    what = f"matching {memory.points_text(len(src_xy))}"
    memory.check_memory(memory.fit_need(len(src_xy), cfg, floor), what, "match fewer points at once")
    memory.check_memory(memory.locate_need(len(src_xy), cfg, floor, maps=options.visualize), what,
                        "match fewer points at once (or without --visualize)")
    return MatchJob(source, target, src_image, trg_image, src_xy, cfg, folder, options.visualize,
                    Path(save_embeddings) if save_embeddings is not None else None)


def run_match(ldm: LDM, job: MatchJob, *, progress: Progress | None = None) -> MatchResult:
    """Find the source points on the target and write ``matches.json``, ``matches.csv``, ``matches.jpg`` (side
    by side, a line per point), the embeddings if asked, and ``vis/`` with ``job.visualize``.

    Args:
        ldm: the model.
        job: from :func:`prepare_match`.
        progress: ``progress(stage, done, total)`` for the stages ``fit`` and ``locate``.
    """
    cfg = prepare(ldm, job.cfg)  # matches.json records the resolved image_size
    found = correspond(ldm, job.src_image, job.trg_image, job.src_xy, cfg, return_maps=job.visualize,
                       progress=progress)
    location, src_xy = found.target, job.src_xy
    record = {
        "source": str(job.source), "target": str(job.target),
        "source_size": [job.src_image.shape[1], job.src_image.shape[0]],
        "target_size": [job.trg_image.shape[1], job.trg_image.shape[0]],
        "model": ldm.model_id, "autocast": ldm.autocast_name, "precision": found.embeddings.precision,
        "skipped_steps": (None if found.embeddings.skipped_steps is None
                          else found.embeddings.skipped_steps.tolist()), "config": cfg.to_dict(),
        "matches": [{"point": i, "source": [float(x) for x in src_xy[i]],
                     "target": [float(x) for x in location.points[i]],
                     "confidence": float(location.confidence[i])} for i in range(len(src_xy))],
    }
    out = job.out
    with out.writing():  # a hidden staging folder, made the output folder whole at the end (or deleted)
        out.add(write_json(out / MATCHES_JSON, record))
        out.add(_write_matches_csv(out / MATCHES_CSV, src_xy, location))
        out.add(write_image(out / MATCHES_IMAGE, side_by_side(job.src_image, job.trg_image, src_xy,
                                                              location.points)))
        if job.visualize:
            write_match_visuals(out / VIS_DIR, MatchedImage(job.source, job.src_image, src_xy, found.source_maps),
                                MatchedImage(job.target, job.trg_image, location.points, location.maps),
                                location.confidence, cfg.layers)
            out.add(out / VIS_DIR / VIEW_INDEX)
    if job.save_embeddings is not None:
        with staged_file(job.save_embeddings, overwrite=out.overwrite, overwrite_hint=out.overwrite_hint) as staged:
            found.embeddings.save(staged)
        out.add(job.save_embeddings)
    return MatchResult(src_xy, location.points, location.confidence, found.embeddings, record, out.final,
                       list(out.written))


def match(ldm: LDM, source: str | os.PathLike, target: str | os.PathLike, points: np.ndarray,
          cfg: Config | None = None, *, out: str | os.PathLike | None = None, visualize: bool = False,
          save_embeddings: str | os.PathLike | None = None, progress: Progress | None = None,
          overwrite: bool = False) -> MatchResult:
    """Find where `source`'s points (N, 2) x, y are in `target` and write the outputs into `out`.

    `cfg` defaults to ``Config()`` (the ``paper`` preset). The keyword options are :class:`MatchOptions`'s; see
    :func:`prepare_match` and :func:`run_match`.
    """
    options = MatchOptions(out=out, visualize=visualize, save_embeddings=save_embeddings, overwrite=overwrite)
    job = prepare_match(source, target, points, options=options)
    if cfg is not None:
        job = dataclasses.replace(job, cfg=cfg)
    return run_match(ldm, job, progress=progress)


def _write_matches_csv(path: Path, src_xy: np.ndarray, location: Location) -> Path:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["point", "src_x", "src_y", "trg_x", "trg_y", "confidence"])
        for i, (src, trg, conf) in enumerate(zip(src_xy, location.points, location.confidence, strict=True)):
            writer.writerow([i, f"{src[0]:.3f}", f"{src[1]:.3f}", f"{trg[0]:.3f}", f"{trg[1]:.3f}", f"{conf:.6f}"])
    return path
