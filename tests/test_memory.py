"""Memory whatever the number of points (issue 22, defect 2): the estimate by hand, the one-line refusal before any work
(points, image size; track, batch, fit, match), and the chunks that keep the work bounded giving the same results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import random_image
from equivariant import write_lossless_video
from typer.testing import CliRunner

import vidcorr
from vidcorr import Config, memory
from vidcorr.io import tracks as tracks_module
from vidcorr.io.tracks import Tracks
from vidcorr.method.model import SD14_UNET_CONFIG
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_lossless_video(path, [random_image(48, 64, seed=t) for t in range(6)])
    return path


def test_the_model_sizes_are_the_models(tiny):
    assert tiny.sizes == memory.TINY_SIZE == memory.ModelSize(32, 64, 0.1, 4)
    sd = SD14_UNET_CONFIG
    assert memory.SD_SIZE == memory.ModelSize(sd["cross_attention_dim"], sd["sample_size"] * 8,
                                              sd["block_out_channels"][0] / 320)
    assert memory.model_floor("tiny") == memory.model_floor(None) == memory.TINY_SIZE
    assert memory.model_floor("CompVis/stable-diffusion-v1-4") == memory.SD_SIZE


def test_the_estimate_by_hand():
    # 10 000 points (--grid 100) over 300 frames, the paper preset on SD 1.x at 512, 8 key frames + 1 query frame.
    need = memory.track_need(10_000, 300, Config(), memory.SD_SIZE, fit=True, key_frames=9)
    assert dict(need.kept) == {
        "embeddings": 10_000 * 5 * 77 * 768 * 4 * 2,  # fitted, and a copy while written: 23.7 GB
        "tracks": 300 * 10_000 * (16 + 8 + 8 + 4 + 1 + 16 + 8),  # 183 MB
        "one frame's attention maps": 10_000 * 4 * 512 * 512 * 4,  # 41.9 GB
        "key-frame heat maps": 9 * 10_000 * 128 * 128 * 3,  # 4.42 GB
        "the viewer's index": 300 * 10_000 * 200,  # 600 MB
    }
    assert dict(need.working) == {
        "fit buffers": 5 * (512 * 512 * 4 + 2 * 4 * 64 * 64 * 4 + 4 * 77 * 768 * 4),
        "one crop through the networks": 1.0e9,
        "the image": 2 * 3 * 512 * 512 * 4,
    }
    # Loaded embeddings are kept once, and no maps without key frames or a heat map.
    assert dict(memory.track_need(10, 3, Config(), memory.SD_SIZE, fit=False).kept) == {
        "embeddings": 10 * 5 * 77 * 768 * 4, "tracks": 3 * 10 * 61}
    # Chunks: 1 GiB of canvases, 5 restarts x (4 layers + 1 count) x 512 x 512 x 4 bytes = 26.2 MB a point.
    assert memory.points_per_chunk(memory.canvas_bytes(Config(), memory.SD_SIZE)) == (1 << 30) // (5 * 5 * 512**2 * 4)
    assert memory.points_per_chunk(1e12) == 1


def test_a_grid_that_cannot_fit_is_refused_before_any_work_in_one_line(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2e9)
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--grid", "300", "-o", str(out), *TINY])
    assert result.exit_code == 2, result.output
    # 90 000 points on the tiny model (D = 32, 1 restart), 6 frames, 8 key frames cut to the 6, + 1 query frame:
    # embeddings 90000 * 77 * 32 * 4 * 2 = 1.774 GB, maps 90000 * 4 * 64 * 64 * 4 = 5.898 GB, heat maps
    # 7 * 90000 * 49152 = 30.966 GB, the viewer's index 6 * 90000 * 200 = 0.108 GB, tracks 6 * 90000 * 61 = 0.033 GB
    # and the working set 0.002 GB: 38.78 GB, the parts below 0.5 % of it left out of the list.
    assert result.stderr.splitlines() == [
        "error: tracking 90000 points on 6 frames needs about 38.8 GB of memory (embeddings 1.77 GB, one frame's "
        "attention maps 5.9 GB, key-frame heat maps 31 GB), more than the 2 GB available; track fewer points (a "
        "smaller --grid, or the points split over several runs), or without key frames for the viewer "
        "(--keyframes 0)"]  # the model never loaded: no warning about --model tiny
    assert not out.exists()
    monkeypatch.setattr(memory, "available_bytes", lambda: 1.5e9)
    without = runner.invoke(app, ["track", str(clip), "--grid", "300", "-o", str(out), "--keyframes", "0", *TINY])
    assert without.exit_code == 2
    # Without key frames: the embeddings 1.774 GB, the tracks 0.033 GB and the working set 0.002 GB.
    assert without.stderr.splitlines() == [
        "error: tracking 90000 points on 6 frames needs about 1.81 GB of memory (embeddings 1.77 GB, tracks 32.9 MB), "
        "more than the 1.5 GB available; track fewer points (a smaller --grid, or the points split over several "
        "runs)"]


def test_an_image_size_whose_one_point_cannot_fit_is_refused_in_one_line(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 16e9)
    # One point at 64000 on the tiny model: its target 64000^2 * 4 + two latents 2 * 4 * 8000^2 * 4 = 18.4 GB
    # (+ its embedding's 4 * 77 * 32 * 4), one crop through the networks 1e9 * 125^2 * 0.1 = 1.56 TB, the image
    # and its flip 2 * 3 * 64000^2 * 4 = 98.3 GB: 1.68 TB.
    line = ("even one point needs about 1.68 TB of memory at this image size (fit buffers 18.4 GB, one crop through "
            "the networks 1.56 TB, the image 98.3 GB), more than the 16 GB available; use a smaller --image-size")
    image = tmp_path / "frame.png"
    from PIL import Image

    Image.fromarray(random_image(48, 64)).save(image)
    for command, what in ((["track", str(clip), "-o", str(tmp_path / "t")], "tracking 1 point on 6 frames"),
                          (["fit", str(clip), "-o", str(tmp_path / "e.safetensors")], "fitting 1 point"),
                          (["fit", str(image), "-o", str(tmp_path / "e.safetensors")], "fitting 1 point"),
                          (["match", str(image), str(image), "-o", str(tmp_path / "m")], "matching 1 point")):
        result = runner.invoke(app, [*command, "--points", "10,10", "--image-size", "64000", *TINY])
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [f"error: {what}: {line}"], command
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png"]


def test_a_batch_is_refused_before_any_work_when_a_video_cannot_fit(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1e9)
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--batch", "--grid", "300", "--keyframes", "0", "-o", str(out),
                                 *TINY])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: tracking 90000 points on 6 frames of {clip} needs about 1.81 GB of memory (embeddings 1.77 GB, "
        "tracks 32.9 MB), more than the 1 GB available; track fewer points (a smaller --grid, or the points split "
        "over several runs)"]
    assert not out.exists()


def test_the_method_itself_refuses_what_cannot_fit(tiny, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1e6)
    with pytest.raises(vidcorr.InputError) as caught:
        vidcorr.fit(tiny, random_image(48, 64), np.array([[10.0, 10.0]]), Config(image_size=64, num_steps=1))
    assert str(caught.value).startswith("fitting 1 point: even one point needs about ")


# --------------------------------------------------------------------------------------------- chunks


def test_chunks_of_one_point_give_the_same_embeddings_and_tracks(tiny, monkeypatch):
    """Fit and locate take the points a chunk at a time: with chunks of one point (a 1-byte budget) the draws, the
    Adam steps and the maps are each point's own, so everything equals the one-chunk run."""
    frames = [random_image(48, 64, seed=20 + t) for t in range(4)]
    queries = np.array([[1, 10.5, 20.5], [1, 40.5, 30.5], [2, 33.0, 12.0]])
    cfg = Config(image_size=64, num_steps=2, restarts=2, crops=5, max_batch=1)
    whole = vidcorr.fit_queries(tiny, frames, queries, cfg)
    tracked = vidcorr.track(tiny, frames, embeddings=whole, cfg=cfg)
    maps = vidcorr.locate(tiny, frames[3], whole, cfg, return_maps=True)

    monkeypatch.setattr(memory, "CHUNK_BYTES", 1)
    reports: list[tuple[str, int, int]] = []
    chunked = vidcorr.fit_queries(tiny, frames, queries, cfg, progress=lambda *a: reports.append(a))
    assert torch.equal(chunked.tensors, whole.tensors)
    assert chunked.extra["ref_attention"] == whole.extra["ref_attention"]
    again = vidcorr.track(tiny, frames, embeddings=chunked, cfg=cfg)
    for name in ("points", "confidence", "visible"):
        np.testing.assert_array_equal(getattr(again, name), getattr(tracked, name))
    located = vidcorr.locate(tiny, frames[3], chunked, cfg, return_maps=True)
    assert torch.equal(located.maps, maps.maps)
    np.testing.assert_array_equal(located.points, maps.points)
    # One progress bar per stage over every chunk: fit 2 steps x 3 chunks, then each frame's locate 5 crops x chunks.
    fit_reports = [r for r in reports if r[0] == "fit"]
    assert fit_reports == [("fit", k, 6) for k in range(1, 7)]


def test_tracks_files_are_written_a_block_of_frames_at_a_time_with_the_same_text(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    t, n = 7, 5
    points = rng.normal(30, 9, (t, n, 2)).astype(np.float32)
    points[2, 1] = np.nan
    tracks = Tracks(points=points, visible=rng.random((t, n)) > 0.5, confidence=rng.random((t, n)).astype(np.float32),
                    queries=np.column_stack([np.zeros(n), rng.random((n, 2)) * 40]), frame_indices=np.arange(0, 14, 2),
                    fps=12.5, size=(64, 48), meta={"config": {"layers": [5, 6]}})
    monkeypatch.setattr(tracks_module, "WRITE_BLOCK_CELLS", 3)  # blocks of one frame
    tracks.save_json(tmp_path / "t.json")
    tracks.save_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.json").read_text() == json.dumps(tracks.to_json_dict(), allow_nan=False)
    # The CSV as its docstring says, row by row: frame, point, x, y, visible, confidence (numpy's float32 text).
    expected = ["frame,point,x,y,visible,confidence"] + [
        f"{2 * r},{p},{str(points[r, p, 0])},{str(points[r, p, 1])},{int(tracks.visible[r, p])},"
        f"{str(tracks.confidence[r, p])}"
        for r in range(t) for p in range(n)]
    assert (tmp_path / "t.csv").read_text().splitlines() == expected


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
])
def test_an_allocation_the_estimate_did_not_foresee_fails_in_one_line(tmp_path, monkeypatch, error):
    from PIL import Image

    from vidcorr.method import fit as fit_module

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(fit_module, "_optimise", fail)
    image = tmp_path / "frame.png"
    Image.fromarray(random_image(48, 64)).save(image)
    result = runner.invoke(app, ["fit", str(image), "--points", "10,10", "-o", str(tmp_path / "e.safetensors"), *TINY])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: out of memory: the run needs more than this machine (or its GPU) has left; track fewer points, a "
        "smaller --image-size or --max-batch")
    assert not (tmp_path / "e.safetensors").exists()
