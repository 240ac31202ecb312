"""The pair-benchmark runner, its report, pictures and downloads, on synthetic folders (no model weights, no
network: predictions come from stand-in predictors, downloads from file:// URLs and a localhost server)."""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from synthetic_pairs import (
    CUB_SAMPLE_CLASSES,
    CUB_SAMPLE_IMAGES,
    SPairPair,
    willow_sample,
    write_cub,
    write_pfwillow,
    write_spair,
)

from vidcorr.errors import DataError, InputError
from vidcorr.eval import download, report
from vidcorr.eval.pairs import report as pairs_report
from vidcorr.eval.pairs import runner
from vidcorr.eval.pairs.pair import Prediction
from vidcorr.eval.pairs.pck import summarize
from vidcorr.eval.pairs.readers import read_benchmark
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr.runs.folder import RunOptions, RunProgress
from vidcorr.runs.shards import Shard, device_for_rank, parse_shard, resolve_shard

ALPHAS = (0.01, 0.05, 0.1)


def spair_pairs(n: int) -> list[SPairPair]:
    """n SPair test pairs in two categories, 1..3 keypoints each, varied difficulty flags."""
    pairs = []
    for i in range(n):
        category = "aeroplane" if i % 3 else "cat"
        kps = [[4.0 + 3 * k + i, 5.0 + 2 * k] for k in range(1 + i % 3)]
        pairs.append(SPairPair(
            number=i + 1, category=category, src=f"2008_{i:06d}", trg=f"2008_{i + 100:06d}",
            src_size=(40 + i, 30), trg_size=(32, 24 + i), src_kps=kps,
            trg_kps=[[x * 0.7 + 1, y * 0.9 + 1] for x, y in kps], src_bbox=[0, 1, 38, 28], trg_bbox=[2, 1, 30, 20],
            kps_ids=[str(k) for k in range(len(kps))],
            flags={"viewpoint_variation": i % 3, "scale_variation": i % 2, "truncation": 0, "occlusion": i % 4},
        ))
    return pairs


@pytest.fixture
def spair_root(tmp_path: Path) -> Path:
    return write_spair(tmp_path / "SPair-71k", {"test": spair_pairs(7)})


def truth(pair, src_image, trg_image) -> Prediction:
    assert src_image.shape[:2] == (pair.src_size[1], pair.src_size[0])
    assert trg_image.shape[:2] == (pair.trg_size[1], pair.trg_size[0])
    return Prediction(np.array(pair.trg_kps), np.full(pair.num_keypoints, 0.5, np.float32))


def off_by_some(pair, src_image, trg_image) -> Prediction:
    """A deterministic stand-in model: keypoint k off by a pair- and k-dependent 0..3.5 px in x."""
    shift = np.array([(zlib.crc32(f"{pair.pair_id}{k}".encode()) % 8) / 2 for k in range(pair.num_keypoints)])
    return Prediction(pair.trg_kps + np.stack([shift, np.zeros_like(shift)], axis=1))


class Counting:
    """A predictor wrapper that records which pairs it computed and can stop after `stop_after` of them."""

    def __init__(self, inner=off_by_some, stop_after: int | None = None) -> None:
        self.inner, self.stop_after, self.calls = inner, stop_after, []

    def __call__(self, pair, src, trg) -> Prediction:
        self.calls.append(pair.pair_id)
        return self.inner(pair, src, trg)

    def progress(self, update: RunProgress) -> None:
        if self.stop_after is not None and update.done - update.resumed >= self.stop_after:
            raise KeyboardInterrupt


def lines_per_pair(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in PAIR_RECORDS.results_files(out):
        for score in PAIR_RECORDS.read(path):
            counts[score.pair_id] = counts.get(score.pair_id, 0) + 1
    return counts


# ------------------------------------------------------------------------------------------ ground truth


def _benchmarks(tmp_path: Path):
    rows, sizes = willow_sample()
    write_pfwillow(tmp_path / "PF-WILLOW", rows, sizes)
    write_cub(tmp_path / "CUB_200_2011", CUB_SAMPLE_CLASSES, CUB_SAMPLE_IMAGES)
    write_spair(tmp_path / "SPair-71k", {"test": spair_pairs(4)})
    return [("spair", {}), ("pfwillow", {}), ("cub", {"num_classes": None})]


def test_ground_truth_scores_100_under_every_protocol(tmp_path: Path) -> None:
    for benchmark, options in _benchmarks(tmp_path):
        pairs = read_benchmark(benchmark, tmp_path, **options)
        run = runner.run_eval(pairs, tmp_path / f"out-{benchmark}", truth, alphas=ALPHAS,
                              options=RunOptions(fsync=False))
        assert run.evaluated == len(pairs) == run.total and run.resumed == 0
        for protocol in ("official", "seed"):
            summary = summarize(run.scores, protocol)
            assert summary.overall.per_image == summary.overall.per_keypoint == (100.0,) * 3, (benchmark, protocol)
            assert summary.overall.num_keypoints == sum(p.num_keypoints for p in pairs)
            assert all(v.per_image == (100.0,) * 3 for v in summary.per_category.values())
        assert run.scores[0].extra["confidence"] == [0.5] * pairs[0].num_keypoints


def test_results_lines_hold_the_predictions_and_the_scores(spair_root: Path, tmp_path: Path) -> None:
    pairs = read_benchmark("spair", spair_root)
    run = runner.run_eval(pairs, tmp_path / "out", off_by_some, options=RunOptions(fsync=False))
    back = PAIR_RECORDS.read(tmp_path / "out" / "results.jsonl")
    assert [s.pair_id for s in back] == [p.pair_id for p in pairs]
    for pair, score in zip(pairs, back, strict=True):
        np.testing.assert_array_equal(score.pred_xy, off_by_some(pair, None, None).trg_xy)
        np.testing.assert_array_equal(score.true_xy, pair.trg_kps)
        # Official threshold: the target box's longer side, 28 px; alpha 0.1 allows 2.8 px.
        assert score.thresholds["official"] == 28.0
        shift = score.pred_xy[:, 0] - score.true_xy[:, 0]
        np.testing.assert_array_equal(score.correct["official"][:, 1], shift <= 2.8)
        assert score.extra["seconds"] >= 0
    assert run.results_path == tmp_path / "out" / "results.jsonl"


# ------------------------------------------------------------------------------------- shards and resume


def test_three_shards_merged_equal_one_unsharded_run(spair_root: Path, tmp_path: Path) -> None:
    pairs = read_benchmark("spair", spair_root)
    whole = runner.run_eval(pairs, tmp_path / "whole", off_by_some, options=RunOptions(fsync=False))
    calls = Counting()
    for index in range(3):
        part = runner.run_eval(pairs, tmp_path / "sharded", calls, options=RunOptions(shard=(index, 3), fsync=False))
        assert [s.pair_id for s in part.scores] == [p.pair_id for p in pairs[index::3]]
        assert part.results_path.name == f"results-shard{index}of3.jsonl"
    assert sorted(calls.calls) == sorted(p.pair_id for p in pairs)  # each pair computed by exactly one shard
    one, three = report.build_report([tmp_path / "whole"]), report.build_report([tmp_path / "sharded"])
    assert len(three.files) == 3
    assert report.report_json(one)["benchmarks"] == report.report_json(three)["benchmarks"]
    assert one.benchmarks[0].tables() == three.benchmarks[0].tables()
    merged = PAIR_RECORDS.merge(PAIR_RECORDS.results_files(tmp_path / "sharded"))
    for a, b in zip(sorted(whole.scores, key=lambda s: s.pair_id), merged, strict=True):
        assert a.pair_id == b.pair_id
        np.testing.assert_array_equal(a.pred_xy, b.pred_xy)
    # The summary is not trivially 0 or 100: the stand-in model is right on some keypoints only.
    assert 0 < one.benchmarks[0].summaries["official"].overall.per_keypoint[1] < 100


@pytest.mark.parametrize("k", [1, 4])
def test_a_run_killed_after_k_pairs_resumes_with_every_pair_once(spair_root: Path, tmp_path: Path, k: int) -> None:
    pairs = read_benchmark("spair", spair_root)
    first = Counting(stop_after=k)
    with pytest.raises(KeyboardInterrupt):
        runner.run_eval(pairs, tmp_path / "out", first, options=RunOptions(progress=first.progress, fsync=False))
    assert list(lines_per_pair(tmp_path / "out")) == [p.pair_id for p in pairs[:k]]
    second = Counting()
    seen: list[RunProgress] = []
    run = runner.run_eval(pairs, tmp_path / "out", second, options=RunOptions(progress=seen.append, fsync=False))
    assert second.calls == [p.pair_id for p in pairs[k:]]
    assert lines_per_pair(tmp_path / "out") == {p.pair_id: 1 for p in pairs}
    assert (run.resumed, run.evaluated, run.total) == (k, len(pairs) - k, len(pairs))
    assert (seen[0].done, seen[0].resumed, seen[0].item) == (k, k, None)
    assert [u.done for u in seen[1:]] == list(range(k + 1, len(pairs) + 1))
    # The running PCK after the last pair is the per-image PCK of all of them.
    final = summarize(run.scores, "official").overall.per_image
    assert seen[-1].running == pytest.approx(dict(zip((0.05, 0.1), final, strict=True)))


def test_a_truncated_last_line_is_redone(spair_root: Path, tmp_path: Path) -> None:
    pairs = read_benchmark("spair", spair_root)
    runner.run_eval(pairs[:3], tmp_path / "out", off_by_some, options=RunOptions(fsync=False))
    path = tmp_path / "out" / "results.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # killed while writing the third line
    again = Counting()
    runner.run_eval(pairs, tmp_path / "out", again, options=RunOptions(fsync=False))
    assert again.calls == [p.pair_id for p in pairs[2:]]
    assert lines_per_pair(tmp_path / "out") == {p.pair_id: 1 for p in pairs}
    assert all(line.startswith("{") and line.endswith("}") for line in path.read_text().splitlines())


def test_resuming_with_another_shard_layout_skips_pairs_any_shard_finished(spair_root: Path, tmp_path: Path) -> None:
    pairs = read_benchmark("spair", spair_root)
    runner.run_eval(pairs, tmp_path / "out", off_by_some, options=RunOptions(shard=(1, 2), fsync=False))
    rest = Counting()
    run = runner.run_eval(pairs, tmp_path / "out", rest, options=RunOptions(fsync=False))
    assert rest.calls == [p.pair_id for p in pairs[0::2]]
    assert run.resumed == 3 and len(run.scores) == 7
    assert lines_per_pair(tmp_path / "out") == {p.pair_id: 1 for p in pairs}
    assert runner.pending_pairs(pairs, tmp_path / "out") == []


def test_a_run_folder_refuses_other_settings(spair_root: Path, tmp_path: Path) -> None:
    pairs = read_benchmark("spair", spair_root, limit=1)
    setup = {"benchmark": "spair", "config": {"num_steps": 2, "seed": 0}, "vidcorr_version": "0.1.0"}
    runner.run_eval(pairs, tmp_path / "out", truth, options=RunOptions(setup=setup, fsync=False))
    assert json.loads((tmp_path / "out" / "run.json").read_text()) == setup
    runner.run_eval(pairs, tmp_path / "out", truth,
                    options=RunOptions(setup={**setup, "vidcorr_version": "9"}, fsync=False))
    changed = {**setup, "config": {"num_steps": 3, "seed": 0}}
    with pytest.raises(InputError) as info:
        runner.run_eval(pairs, tmp_path / "out", truth, options=RunOptions(setup=changed, fsync=False))
    assert str(info.value) == (f"{tmp_path / 'out'} holds a run with other settings (config.num_steps 2 there, 3 "
                               "now); resume it with the same options or choose another --out")


def test_an_image_that_disagrees_with_its_annotation_is_a_data_error(spair_root: Path, tmp_path: Path) -> None:
    pair = read_benchmark("spair", spair_root, limit=1)[0]
    from PIL import Image

    Image.new("RGB", (10, 10)).save(pair.trg_path)
    with pytest.raises(DataError) as info:
        runner.run_eval([pair], tmp_path / "out", truth, options=RunOptions(fsync=False))
    assert str(info.value) == f"{pair.trg_path}: image is 10x10 pixels but its annotation says 32x24"


# ------------------------------------------------------------------------------- shard and device choice


@pytest.mark.parametrize(("text", "message"), [
    ("3/3", "--shard index must be in 0..2, got '3/3'"),
    ("1/0", "--shard count must be >= 1, got '1/0'"),
    ("a/b", "--shard must be 'i/n' (shard i of n, counted from 0), got 'a/b'"),
    ("-1/2", "--shard must be 'i/n' (shard i of n, counted from 0), got '-1/2'"),
    ("2", "--shard must be 'i/n' (shard i of n, counted from 0), got '2'"),
])
def test_bad_shards_are_one_line_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_shard(text)
    assert str(info.value) == message


def test_shards_come_from_the_option_the_launcher_or_both() -> None:
    assert parse_shard(" 2 / 5 ") == (2, 5)
    assert resolve_shard(None, {}) == Shard(0, 1, 0)
    assert resolve_shard((2, 5), {}) == Shard(2, 5, 0)
    torchrun = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}
    assert resolve_shard(None, torchrun) == Shard(5, 8, 1)
    slurm = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "3"}
    assert resolve_shard(None, slurm) == Shard(3, 4, 3)
    # A SLURM array task i of 10, each with 4 processes: process 3 of task 2 takes shard 2 * 4 + 3 of 40.
    assert resolve_shard((2, 10), slurm) == Shard(11, 40, 3)
    # Every shard of the composition is taken exactly once.
    taken = sorted(resolve_shard((i, 3), {"RANK": str(r), "WORLD_SIZE": "2"}).index
                   for i in range(3) for r in range(2))
    assert taken == list(range(6))
    with pytest.raises(InputError, match="RANK=4 is not a rank of WORLD_SIZE=4"):
        resolve_shard(None, {"RANK": "4", "WORLD_SIZE": "4"})


def test_the_local_rank_picks_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert device_for_rank("auto", 3, launched=True) == "cuda:3"
    assert device_for_rank("cuda", 0, launched=True) == "cuda:0"
    assert device_for_rank("cpu", 3, launched=True) == "cpu"
    assert device_for_rank("auto", 3, launched=False) == "auto"
    with pytest.raises(InputError) as info:
        device_for_rank("auto", 4, launched=True)
    assert str(info.value) == ("local rank 4 has no GPU: this node has 4 CUDA device(s); start at most 4 "
                               "processes per node")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one GPU bound to this process
    assert device_for_rank("auto", 3, launched=True) == "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_for_rank("auto", 3, launched=True) == "auto"


# ------------------------------------------------------------------------------------------------ report


def test_report_tables_hold_both_protocols_categories_flags_and_the_paper(spair_root: Path, tmp_path: Path) -> None:
    pairs = read_benchmark("spair", spair_root)
    run = runner.run_eval(pairs, tmp_path / "out", off_by_some,
                          options=RunOptions(setup={"benchmark": "spair", "split": "test"}, fsync=False))
    built = report.build_report([tmp_path / "out" / "results.jsonl"])
    bench = built.benchmarks[0]
    assert (bench.dataset, bench.num_pairs, bench.num_keypoints) == ("spair", 7, 13)
    assert bench.paper == {0.05: 28.9, 0.1: 45.4} and bench.setup["split"] == "test"
    summary = pairs_report.summary_table(bench)
    assert summary.headers == ("protocol", "measure", "PCK@0.05", "PCK@0.1", "paper @0.05", "paper @0.1")
    rows = {(r[0], r[1]): r[2:] for r in summary.rows}
    official = summarize(run.scores, "official")
    assert rows[("official", "per image")] == tuple(f"{v:.1f}" for v in official.overall.per_image) + ("", "")
    assert rows[("seed", "per image")][2:] == ("28.9", "45.4")
    assert rows[("official", "mean over categories")][:2] == tuple(f"{v:.1f}" for v in official.category_mean)
    categories = pairs_report.category_table(bench, "seed")
    assert [r[0] for r in categories.rows] == ["aeroplane", "cat", "all"]
    assert [r[1] for r in categories.rows] == ["4", "3", "7"]
    flags = pairs_report.flag_table(bench, "official")
    assert {(r[0], r[1]) for r in flags.rows} >= {("occlusion", "3"), ("viewpoint variation", "2")}
    assert bench.coverage() == "7 pairs, 13 keypoints (of 12,234 in the full split: incomplete)"

    json_path, md_path = report.write_report(built, tmp_path / "rep")
    data = json.loads(json_path.read_text())["benchmarks"]["spair"]
    assert data["protocols"]["official"]["overall"]["per_image"]["0.05"] == official.overall.per_image[0]
    assert data["paper"]["pck"] == {"0.05": 28.9, "0.1": 45.4}
    assert set(data["protocols"]["seed"]["per_flag"]) == {"occlusion", "scale_variation", "truncation",
                                                          "viewpoint_variation"}
    text = md_path.read_text()
    assert "| seed | per image |" in text and "### SPair-71k (test) by difficulty, seed protocol" in text
    # The picture: per-image PCK against alpha, recomputed from each line's points and threshold, equals the
    # tables' at the alphas the run scored; the paper's numbers are points on the seed curve.
    for protocol, summary in bench.summaries.items():
        at_run_alphas = [bench.curves[protocol][pairs_report.CURVE_ALPHAS.index(a)] for a in (0.05, 0.1)]
        assert at_run_alphas == pytest.approx(list(summary.overall.per_image))
    figure = bench.figure()
    assert [(a.x, a.value, figure.series[a.series].label) for a in figure.anchors] == [
        (0.05, 28.9, "vidcorr, seed protocol, per image"), (0.1, 45.4, "vidcorr, seed protocol, per image")]
    assert "![SPair-71k (test): PCK against alpha](report-spair.png)" in text
    assert (tmp_path / "rep" / "report-spair.png").stat().st_size > 0


def test_report_errors(tmp_path: Path, spair_root: Path) -> None:
    with pytest.raises(DataError, match="results file or folder not found"):
        report.build_report([tmp_path / "nope.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        report.build_report([tmp_path / "empty"])
    assert str(info.value) == (f"{tmp_path / 'empty'}: no results files (results*.jsonl, tapvid*.jsonl, "
                               "jhmdb*.jsonl) in this folder")
    pairs = read_benchmark("spair", spair_root, limit=2)
    runner.run_eval(pairs, tmp_path / "a", truth,
                    options=RunOptions(setup={"benchmark": "spair", "seed": 0}, fsync=False))
    runner.run_eval(pairs, tmp_path / "b", truth,
                    options=RunOptions(setup={"benchmark": "spair", "seed": 1}, fsync=False))
    with pytest.raises(DataError, match="describe different runs"):
        report.build_report([tmp_path / "a", tmp_path / "b"])


# ----------------------------------------------------------------------------------------------- pictures


def test_visualize_writes_pictures_and_an_index(spair_root: Path, tmp_path: Path) -> None:
    import torch
    from PIL import Image

    pairs = read_benchmark("spair", spair_root, limit=3)

    def with_maps(pair, src, trg) -> Prediction:
        k = pair.num_keypoints
        maps = torch.rand(k, 2, 8, 8, generator=torch.Generator().manual_seed(0))
        return Prediction(off_by_some(pair, src, trg).trg_xy, np.full(k, 0.25, np.float32), maps, maps, (5, 8))

    run = runner.run_eval(pairs, tmp_path / "out", with_maps, visualize=True, options=RunOptions(fsync=False))
    vis = tmp_path / "out" / "vis"
    index = json.loads((vis / "index.json").read_text())
    assert [p["pair_id"] for p in index["pairs"]] == sorted(p.pair_id for p in pairs)
    for entry in index["pairs"]:
        pair = next(p for p in pairs if p.pair_id == entry["pair_id"])
        score = next(s for s in run.scores if s.pair_id == pair.pair_id)
        assert ":" not in entry["image"]
        picture = np.asarray(Image.open(vis / entry["image"]))
        assert picture.shape == (max(pair.src_size[1], pair.trg_size[1]), pair.src_size[0] + pair.trg_size[0], 3)
        assert [p["correct"] for p in entry["points"]] == score.correct["official"][:, 1].tolist()
        assert [p["correct_by_protocol"]["seed"]["0.05"] for p in entry["points"]] == \
            score.correct["seed"][:, 0].tolist()
        for point in entry["points"]:
            assert point["maps"]["tiles"] == ["layer 5", "layer 8", "mean"]
            strip = np.asarray(Image.open(vis / point["maps"]["trg"]))
            assert strip.shape[1] == 3 * pair.trg_size[0] and strip.shape[0] > pair.trg_size[1]
            assert (vis / point["maps"]["src"]).is_file()
    # A second run into the folder adds its pairs to the same index.
    more = read_benchmark("spair", spair_root)
    runner.run_eval(more, tmp_path / "out", with_maps, visualize=True, options=RunOptions(fsync=False))
    assert len(json.loads((vis / "index.json").read_text())["pairs"]) == 7


# ---------------------------------------------------------------------------------------------- downloads


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _cub_tar(path: Path) -> Path:
    root = path.parent / "cub_src"
    write_cub(root / "CUB_200_2011", CUB_SAMPLE_CLASSES, CUB_SAMPLE_IMAGES)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(root / "CUB_200_2011", arcname="CUB_200_2011")
        info = tarfile.TarInfo("attributes.txt")
        archive.addfile(info, io.BytesIO(b""))
    return path


def test_offline_download_fails_in_one_line_naming_url_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        download.fetch("http://127.0.0.1:9/SPair-71k.tar.gz", tmp_path / "x.tar.gz", layout="<here>", timeout_s=5)
    message = str(info.value)
    assert message.startswith("cannot download http://127.0.0.1:9/SPair-71k.tar.gz (")
    assert message.endswith("); without network, fetch it elsewhere and put in place <here>")
    assert "\n" not in message and not (tmp_path / "x.tar.gz").exists()


def test_a_downloaded_archive_is_verified_then_extracted_in_place(tmp_path: Path, monkeypatch) -> None:
    archive = _cub_tar(tmp_path / "served" / "CUB_200_2011.tgz")
    source = download.SOURCES["cub"]
    remote = download.RemoteFile(archive.as_uri(), "CUB_200_2011.tgz", "tar", ".", source.files[0].required)
    monkeypatch.setitem(download.SOURCES, "cub", download.BenchmarkSource(
        "cub", source.folder, source.marker, (remote,), source.layout))
    root = tmp_path / "data"
    assert not download.is_present("cub", root)
    assert download.ensure_benchmark("cub", root) == root
    assert download.is_present("cub", root) and not (root / "CUB_200_2011.tgz").exists()
    assert not list(root.glob(".vidcorr-extract-*"))
    assert len(read_benchmark("cub", root)) == 3  # the reader finds it where the download put it
    assert download.ensure_benchmark("cub", root) == root  # present: nothing fetched


def test_archives_that_fail_verification_are_not_extracted(tmp_path: Path) -> None:
    spair = download.SOURCES["spair"].files[0]
    good = {"SPair-71k/Layout/large/test.txt": b"x", "SPair-71k/PairAnnotation/test/a.json": b"{}",
            "SPair-71k/JPEGImages/cat/a.jpg": b"jpg"}
    assert len(download.verify_archive(_tar(tmp_path / "good.tgz", good), spair)) == 3
    missing = _tar(tmp_path / "missing.tgz", {k: v for k, v in good.items() if "Layout" not in k})
    with pytest.raises(DataError) as info:
        download.verify_archive(missing, spair)
    assert str(info.value) == (f"{missing}: expected 'SPair-71k/Layout/large/test.txt' in the archive, it is not "
                               "there (an unexpected release?); delete it or extract it by hand")
    evil = _tar(tmp_path / "evil.tgz", {**good, "../outside.txt": b"x"})
    with pytest.raises(DataError, match="refusing to extract '../outside.txt'"):
        download.verify_archive(evil, spair)
    data = (tmp_path / "good.tgz").read_bytes()
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable tar archive"):
        download.verify_archive(truncated, spair)
    willow = download.SOURCES["pfwillow"].files[0]
    zipped = tmp_path / "PF-dataset.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for category in download.PFWILLOW_CATEGORIES[:-1]:
            archive.writestr(f"PF-dataset/{category}/a.png", b"png")
    with pytest.raises(DataError, match="expected 'PF-dataset/winebottle\\(woC\\)/'"):
        download.verify_archive(zipped, willow)
    csv_remote = download.SOURCES["pfwillow"].files[1]
    bad_csv = tmp_path / "test_pairs_pf.csv"
    bad_csv.write_text("<html>moved</html>\n")
    with pytest.raises(DataError, match="expected PF-Willow's pair list"):
        download.verify_archive(bad_csv, csv_remote)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = bytes(range(256)) * 64
    ranges: list[str | None] = []

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_interrupted_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/file.bin"
        dest = tmp_path / "file.bin"
        dest.with_name("file.bin.part").write_bytes(_RangeHandler.payload[:1000])  # what a killed run left
        seen: list[tuple[int, int | None]] = []
        download.fetch(url, dest, progress=lambda name, done, total: seen.append((done, total)))
        assert dest.read_bytes() == _RangeHandler.payload
        assert _RangeHandler.ranges == ["bytes=1000-"]
        assert seen[-1] == (len(_RangeHandler.payload), len(_RangeHandler.payload))
        assert not dest.with_name("file.bin.part").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_random_streams_are_keyed_by_pair_and_keypoint(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keypoint k of two pairs never shares draws; a pair's prediction is the same alone, again or micro-batched."""
    from conftest import random_image
    from synthetic_pairs import memory_pair

    from vidcorr import Config
    from vidcorr.method.streams import item_point_ids

    cfg = Config(image_size=64, num_steps=2, restarts=1, crops=5, lr=0.05)
    src, trg = random_image(48, 80, seed=1), random_image(72, 56, seed=2)
    kps = [[10.0, 20.0], [60.0, 30.0]]

    def pair(pair_id: str):
        return memory_pair(pair_id, src_size=(80, 48), trg_size=(56, 72), src_kps=kps, trg_kps=kps)

    from vidcorr.method import correspond

    seen = []
    original = correspond.fit
    monkeypatch.setattr(correspond, "fit", lambda *a, point_ids=None, **k: seen.append(point_ids) or original(
        *a, point_ids=point_ids, **k))
    a = runner.predict_pair(tiny, pair("000001-x-y:cat"), src, trg, cfg)
    again = runner.predict_pair(tiny, pair("000001-x-y:cat"), src, trg, cfg)
    batched = runner.predict_pair(tiny, pair("000001-x-y:cat"), src, trg, cfg.replace(max_batch=1))
    other = runner.predict_pair(tiny, pair("000002-x-y:cat"), src, trg, cfg)
    ids_a, ids_other = item_point_ids("000001-x-y:cat", 2), item_point_ids("000002-x-y:cat", 2)
    assert seen == [ids_a, ids_a, ids_a, ids_other] and len(set(ids_a) | set(ids_other)) == 4
    np.testing.assert_array_equal(again.trg_xy, a.trg_xy)
    np.testing.assert_array_equal(again.confidence, a.confidence)
    np.testing.assert_array_equal(batched.trg_xy, a.trg_xy)
    np.testing.assert_allclose(batched.confidence, a.confidence, rtol=1e-4)
    # Same images and keypoints, another pair id: other draws, so other attention (keypoint by keypoint).
    assert np.all(np.abs(other.confidence - a.confidence) > 1e-6)
    assert a.precision == "float32" and a.skipped_steps.tolist() == [0, 0]


def test_results_lines_record_the_precision_and_skipped_steps(tmp_path: Path) -> None:
    pairs = [memory_pair_on_disk(tmp_path, "p1"), memory_pair_on_disk(tmp_path, "p2")]

    def predict(pair, src, trg) -> Prediction:
        return Prediction(np.array(pair.trg_kps), precision="autocast-float16",
                          skipped_steps=np.array([2] if pair.pair_id == "p2" else [0]))

    run = runner.run_eval(pairs, tmp_path / "out", predict, options=RunOptions(fsync=False))
    lines = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(line["extra"]["precision"], line["extra"]["skipped_steps"]) for line in lines] == [
        ("autocast-float16", [0]), ("autocast-float16", [2])]
    assert [s.extra["skipped_steps"] for s in run.scores] == [[0], [2]]


def memory_pair_on_disk(root: Path, pair_id: str):
    """A one-keypoint SPair-like pair whose two 16 x 12 images exist under `root`."""
    from synthetic_pairs import memory_pair, write_image

    from vidcorr.eval.pairs.pair import Pair

    pair = memory_pair(pair_id, src_size=(16, 12), trg_size=(16, 12), trg_kps=[[3.0, 4.0]])
    fields = {f: getattr(pair, f) for f in Pair.__dataclass_fields__}
    fields["src_path"] = write_image(root / f"{pair_id}-src.png", (16, 12))
    fields["trg_path"] = write_image(root / f"{pair_id}-trg.png", (16, 12))
    return Pair(**fields)
