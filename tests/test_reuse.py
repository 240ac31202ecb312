"""Re-tracking with what changed (`--reuse OUT`): unchanged points keep OUT's embeddings byte for byte with no fit,
changed ones are fitted again on all their labels, "not visible" marks hold, the output says which points were
refitted; the same per video for a batch. The tiny random model: numbers, not tracking quality, are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import random_image
from safetensors.numpy import load_file
from typer.testing import CliRunner

import vidcorr
from vidcorr.errors import InputError
from vidcorr.io.points import PointLabels, write_points_file
from vidcorr.io.sample import write_synthetic_video
from vidcorr.io.tracks import Tracks
from vidcorr.method import reuse as reuse_module
from vidcorr.method.reuse import refit_changed
from vidcorr_cli.app import app

runner = CliRunner()
OPTIONS = dict(preset="fast", overrides={"num_steps": 2, "image_size": 64}, keyframes=0, video_out=False)
FIRST = PointLabels(("paw", "nose", "tail"), (np.array([[0, 10.5, 12.5], [5, 30.25, 20.0]]),
                                              np.array([[2, 40.0, 8.5]]), np.array([[0, 50.5, 30.5]])))


def clip(folder, seed: int = 0, frames: int = 6):
    pictures = [random_image(40, 60, seed=seed + s) for s in range(frames)]
    return write_synthetic_video(folder / f"clip{seed}.mkv", pictures, fps=10.0, codec="FFV1")


@pytest.fixture(scope="module")
def first(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reuse")
    video = clip(folder)
    result = vidcorr.track_to_folder(tiny, video, folder / "out", queries=FIRST, **OPTIONS)
    return folder, video, result


def tensors(path) -> np.ndarray:
    return load_file(str(path))["embeddings"]


def test_unchanged_labels_keep_every_embedding_and_give_the_same_tracks(first, tiny, tmp_path):
    folder, video, result = first
    again = vidcorr.track_to_folder(tiny, video, tmp_path / "again", queries=FIRST, reuse=folder / "out", **OPTIONS)
    assert again.refitted == [] and again.tracks.meta["refitted"] == []
    assert tensors(tmp_path / "again" / "embeddings.safetensors").tobytes() == \
        tensors(folder / "out" / "embeddings.safetensors").tobytes()
    np.testing.assert_array_equal(again.tracks.points, result.tracks.points)
    np.testing.assert_array_equal(again.tracks.confidence, result.tracks.confidence)


def test_changed_points_are_fitted_again_on_all_their_labels(first, tiny, tmp_path):
    folder, video, result = first
    now = PointLabels(("nose", "paw", "tail", "ear"), (
        np.array([[2, 40.0, 8.5], [4, 41.5, 9.5]]),   # a label added
        np.array([[0, 10.5, 12.5], [5, 30.25, 20.0]]),  # as it was (listed second now): kept
        np.array([[0, 50.5, 31.5]]),                   # moved
        np.array([[3, 20.0, 20.0]])),                  # new
        hidden=(np.array([], np.int64), np.array([3]), np.array([], np.int64), np.array([], np.int64)))
    again = vidcorr.track_to_folder(tiny, video, tmp_path / "again", queries=now, reuse=folder / "out", **OPTIONS)
    assert again.refitted == ["nose", "tail", "ear"]
    before = tensors(folder / "out" / "embeddings.safetensors")
    after = tensors(tmp_path / "again" / "embeddings.safetensors")
    assert after[1].tobytes() == before[0].tobytes()  # paw: byte for byte
    assert not np.array_equal(after[0], before[1]) and not np.array_equal(after[2], before[2])
    saved = vidcorr.Embeddings.load(tmp_path / "again" / "embeddings.safetensors")
    assert saved.labels is not None and saved.labels.ids == now.ids
    for mine, theirs in zip(saved.labels.labels, now.labels, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert saved.extra["refitted"] == ["nose", "tail", "ear"] and saved.extra["reused"] == ["paw"]
    earlier = vidcorr.Embeddings.load(folder / "out" / "embeddings.safetensors")
    assert saved.extra["ref_attention"][1] == earlier.extra["ref_attention"][0]  # its confidence scale travels with it
    # A refitted point is fitted as a fresh fit of the new labels fits it: same labels, same stream keys.
    fresh = vidcorr.fit_queries(tiny, video, now, saved.config)
    np.testing.assert_allclose(after[[0, 2, 3]], fresh.tensors[[0, 2, 3]].numpy(), atol=1e-5)
    # Every label holds its frame; paw is marked not visible on frame 3, in the tracks and in their files.
    tracks = Tracks.load_npz(tmp_path / "again" / "tracks.npz")
    np.testing.assert_array_equal(tracks.points[4, 0], [41.5, 9.5])
    assert not tracks.visible[3, 1] and tracks.labels is not None and tracks.labels.hidden_of(1).tolist() == [3]
    document = json.loads((tmp_path / "again" / "tracks.json").read_text())
    assert document["hidden"] == [{"id": "paw", "point": 1, "t": 3}]
    assert document["meta"]["refitted"] == ["nose", "tail", "ear"]


def test_only_the_changed_points_are_fitted(first, tiny, tmp_path, monkeypatch):
    folder, video, _ = first
    fitted = []
    real = reuse_module.fit_queries

    def spy(ldm, reader, labels, cfg, **kwargs):
        fitted.append((labels.ids, kwargs["point_ids"]))
        return real(ldm, reader, labels, cfg, **kwargs)

    monkeypatch.setattr(reuse_module, "fit_queries", spy)
    removed = PointLabels(FIRST.ids, (FIRST.labels[0][:1], FIRST.labels[1], FIRST.labels[2]))  # paw's 2nd label goes
    embeddings, plan = refit_changed(tiny, video, removed, vidcorr.Embeddings.load(folder / "out" /
                                                                                   "embeddings.safetensors"))
    assert fitted == [(("paw",), [0])] and plan.refit_ids == ["paw"]
    assert embeddings.extra["refitted"] == ["paw"] and embeddings.extra["reused"] == ["nose", "tail"]


def test_reuse_is_refused_on_another_video_and_without_points(first, tiny, tmp_path):
    folder, _, _ = first
    other = clip(tmp_path, seed=7, frames=4)
    with pytest.raises(InputError, match=r"^--reuse '.*out' was not fitted on this video \(60x40, 4 frames\): track "
                                         r"it afresh$"):
        vidcorr.track_to_folder(tiny, other, tmp_path / "x", queries=FIRST, reuse=folder / "out", **OPTIONS)
    with pytest.raises(InputError, match=r"^--reuse '.*nowhere': no embeddings.safetensors there \(give a track "
                                         r"output folder or its embeddings file\)$"):
        vidcorr.track_to_folder(tiny, other, tmp_path / "x", queries=FIRST, reuse=tmp_path / "nowhere", **OPTIONS)


@pytest.mark.parametrize(("extra", "message"), [
    ([], "--reuse needs the points to track: --points-file FILE (the points.json that `vidcorr review` saves)"),
    (["--embeddings", "e.safetensors"], "give either --reuse OUT or --embeddings, not both"),
    (["--points-file", "p.json", "--steps", "3"],
     "--steps applies to fitting; with --reuse the changed points are fitted as the earlier output's were"),
])
def test_the_cli_refuses_reuse_without_its_points(tmp_path, extra, message):
    result = runner.invoke(app, ["track", "clip.mp4", "--reuse", "out", "--model", "tiny", *extra])
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}"


def test_the_cli_says_which_points_were_refitted(first, tmp_path):
    folder, video, _ = first
    points = write_points_file(tmp_path / "points.json", PointLabels(FIRST.ids[:2], FIRST.labels[:2]))
    result = runner.invoke(app, ["track", str(video), "--points-file", str(points), "--reuse", str(folder / "out"),
                                 "--model", "tiny", "--preset", "fast", "--image-size", "64", "--device", "cpu",
                                 "--no-video", "--keyframes", "0", "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert f"kept the embeddings of 2 point(s) from {folder / 'out'}; fitted again: none" in result.output
    assert tensors(tmp_path / "again" / "embeddings.safetensors").tobytes() == \
        tensors(folder / "out" / "embeddings.safetensors")[:2].tobytes()


def test_a_batch_reuses_each_videos_own_output(tiny, tmp_path):
    videos = [clip(tmp_path, seed=0), clip(tmp_path, seed=20)]
    labels = {videos[0]: FIRST, videos[1]: PointLabels.from_queries([[0, 20.5, 20.5], [3, 40.5, 10.5]])}
    first_run = vidcorr.track_many(tiny, videos, tmp_path / "batch", points=labels, **OPTIONS)
    assert first_run.ok and first_run.done == 2
    changed = dict(labels)
    changed[videos[1]] = PointLabels.from_queries([[0, 20.5, 20.5], [3, 44.5, 10.5]])  # point 1 moved
    second = vidcorr.track_many(tiny, videos, tmp_path / "again", points=changed, reuse=tmp_path / "batch",
                                **OPTIONS)
    assert second.ok and second.done == 2
    index = {e["video"]: e["output"] for e in json.loads((tmp_path / "batch" / "batch.json").read_text())["entries"]}
    for video, refitted in ((videos[0], []), (videos[1], ["1"])):
        name = index[str(video)]
        assert Tracks.load_npz(tmp_path / "again" / name / "tracks.npz").meta["refitted"] == refitted
        before = tensors(tmp_path / "batch" / name / "embeddings.safetensors")
        after = tensors(tmp_path / "again" / name / "embeddings.safetensors")
        assert after[0].tobytes() == before[0].tobytes()
        assert (after[1].tobytes() == before[1].tobytes()) == (not refitted)
    assert json.loads((tmp_path / "again" / "run.json").read_text())["reuse"] == str(tmp_path / "batch")
