"""`vidcorr eval`: end to end with the tiny model on a synthetic SPair folder, resuming, shards, reports, and
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_pairs import (
    CUB_SAMPLE_CLASSES,
    CUB_SAMPLE_IMAGES,
    SPairPair,
    willow_sample,
    write_cub,
    write_pfwillow,
    write_spair,
)
from typer.testing import CliRunner

from vidcorr.eval import download
from vidcorr.eval.pairs import runner
from vidcorr.eval.pairs.pair import Prediction
from vidcorr.eval.pairs.results import PAIR_RECORDS
from vidcorr_cli.app import app

cli = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "2", "--image-size", "64", "--device", "cpu"]


def _pair(number: int, category: str, size: tuple[int, int], kps: list[list[float]], occlusion: int) -> SPairPair:
    return SPairPair(
        number=number, category=category, src=f"2008_{number:06d}", trg=f"2009_{number:06d}", src_size=size,
        trg_size=(size[1], size[0]), src_kps=kps, trg_kps=[[y, x] for x, y in kps], src_bbox=[1, 1, 40, 30],
        trg_bbox=[0, 0, 30, 40], kps_ids=[str(k) for k in range(len(kps))],
        flags={"viewpoint_variation": 0, "scale_variation": 1, "truncation": 0, "occlusion": occlusion})


@pytest.fixture
def spair_root(tmp_path: Path) -> Path:
    pairs = [_pair(1, "aeroplane", (48, 32), [[5, 6], [30, 20]], 0), _pair(2, "cat", (40, 40), [[10, 10]], 1),
             _pair(3, "cat", (56, 40), [[20, 12]], 2), _pair(4, "aeroplane", (48, 32), [[7, 7]], 0)]
    root = write_spair(tmp_path / "SPair-71k", {"test": pairs, "val": []})
    rng = np.random.default_rng(0)
    for image in root.glob("JPEGImages/*/*.jpg"):  # texture, so that the model has something to look at
        width, height = Image.open(image).size
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(image)
    return root


def ground_truth(monkeypatch: pytest.MonkeyPatch, calls: list[str] | None = None, stop_at: int | None = None) -> None:
    """Make the method's step return the ground truth (and optionally stop with Ctrl-C at call `stop_at`)."""

    def predict(ldm, pair, src, trg, cfg, *, return_maps=False, progress=None) -> Prediction:
        if calls is not None:
            calls.append(pair.pair_id)
            if stop_at is not None and len(calls) == stop_at:
                raise KeyboardInterrupt
        return Prediction(np.array(pair.trg_kps))

    monkeypatch.setattr(runner, "predict_pair", predict)


def test_spair_end_to_end_with_the_tiny_model_resume_shard_and_report(tmp_path: Path, spair_root: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "spair", "--data-root", str(tmp_path), "--limit", "3", "--out", str(out), *TINY]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "SPair-71k (test): PCK (%)" in result.stdout and "per category, official protocol" in result.stdout
    scores = PAIR_RECORDS.read(out / "results.jsonl")
    assert [s.pair_id for s in scores] == [f"{n:06d}-2008_{n:06d}-2009_{n:06d}:{c}"
                                           for n, c in ((1, "aeroplane"), (2, "cat"), (3, "cat"))]
    for score in scores:
        width, height = score.trg_size
        assert np.all((score.pred_xy >= 0) & (score.pred_xy <= [width, height]))
        assert len(score.extra["confidence"]) == score.num_keypoints
    setup = json.loads((out / "run.json").read_text())
    assert setup["model"] == "tiny" and setup["config"]["num_steps"] == 2 and setup["config"]["restarts"] == 1
    assert setup["split"] == "test" and setup["alphas"] == [0.05, 0.1]
    report = json.loads((out / "report.json").read_text())["benchmarks"]["spair"]
    assert report["num_pairs"] == 3 and report["num_keypoints"] == 4
    assert "| seed | per image |" in (out / "report.md").read_text()

    again = cli.invoke(app, args)  # every pair is done: nothing is computed, nothing is appended
    assert again.exit_code == 0, again.output
    assert "0 pairs evaluated" in again.stdout and "3 resumed" in again.stdout
    assert len((out / "results.jsonl").read_text().splitlines()) == 3

    # A pair computed alone in a shard gives the very same prediction as in the unsharded run; --visualize
    # draws it.
    shards = tmp_path / "shards"
    shard = cli.invoke(app, ["eval", "spair", "--data-root", str(spair_root), "--limit", "3", "--shard", "1/3",
                             "--out", str(shards), "--visualize", *TINY])
    assert shard.exit_code == 0, shard.output
    assert f"vidcorr eval report {shards}" in shard.stdout
    alone = PAIR_RECORDS.read(shards / "results-shard1of3.jsonl")
    assert [s.pair_id for s in alone] == [scores[1].pair_id]
    np.testing.assert_array_equal(alone[0].pred_xy, scores[1].pred_xy)

    index = json.loads((shards / "vis" / "index.json").read_text())
    (entry,) = index["pairs"]
    assert entry["pair_id"] == scores[1].pair_id and entry["image"] == "000002-2008_000002-2009_000002_cat/pair.png"
    assert [p["correct"] for p in entry["points"]] == alone[0].correct["official"][:, 1].tolist()
    assert entry["points"][0]["pred_xy"] == alone[0].pred_xy[0].tolist()
    maps = entry["points"][0]["maps"]
    assert maps["tiles"] == ["layer 5", "layer 6", "layer 7", "layer 8", "mean"]
    assert np.asarray(Image.open(shards / "vis" / entry["image"])).shape == (40, 80, 3)
    assert np.asarray(Image.open(shards / "vis" / maps["trg"])).shape[1] == 5 * 40  # five tiles of the target
    assert (shards / "vis" / maps["src"]).is_file()

    reported = cli.invoke(app, ["eval", "report", str(out / "results.jsonl"), "--protocol", "seed",
                                "--out", str(tmp_path / "rep")])
    assert reported.exit_code == 0, reported.output
    assert "SPair-71k (test): PCK (%)" in reported.stdout and "per category, seed protocol" in reported.stdout
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["benchmarks"]["spair"] == report


def test_ground_truth_scores_100_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ground_truth(monkeypatch)
    rows, sizes = willow_sample()
    write_pfwillow(tmp_path / "PF-WILLOW", rows, sizes)
    write_cub(tmp_path / "CUB_200_2011", CUB_SAMPLE_CLASSES, CUB_SAMPLE_IMAGES)
    for command, extra, pairs in (("pfwillow", ["--protocol", "seed"], 3),
                                  ("cub", ["--num-classes", "0", "--alpha", "0.01"], 4)):
        out = tmp_path / command
        result = cli.invoke(app, ["eval", command, "--data-root", str(tmp_path), "--out", str(out), *extra, *TINY])
        assert result.exit_code == 0, result.output
        data = json.loads((out / "report.json").read_text())["benchmarks"][command]
        assert data["num_pairs"] == pairs
        for protocol in ("official", "seed"):
            overall = data["protocols"][protocol]["overall"]
            assert set(overall["per_image"].values()) == set(overall["per_keypoint"].values()) == {100.0}
        assert "seed_padding_bug" not in json.loads((out / "run.json").read_text())
    assert "PCK@0.01" in result.stdout and "100.0" in result.stdout


def test_launcher_shards_and_the_report_merges_them(tmp_path: Path, spair_root: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    ground_truth(monkeypatch, calls)
    out = tmp_path / "run"
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        result = cli.invoke(app, ["eval", "spair", "--data-root", str(spair_root), "--out", str(out), *TINY])
        assert result.exit_code == 0, result.output
        assert f"shard {rank}/2 done" in result.stdout
    assert sorted(p.name for p in out.glob("results*")) == ["results-shard0of2.jsonl", "results-shard1of2.jsonl"]
    assert len(calls) == 4 and len(set(calls)) == 4
    monkeypatch.delenv("RANK")
    report = cli.invoke(app, ["eval", "report", str(out)])
    assert report.exit_code == 0, report.output
    merged = json.loads((out / "report.json").read_text())
    assert merged["benchmarks"]["spair"]["num_pairs"] == 4 and len(merged["files"]) == 2


def test_ctrl_c_keeps_the_finished_pairs_and_a_rerun_resumes(tmp_path: Path, spair_root: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    ground_truth(monkeypatch, calls, stop_at=2)
    out = tmp_path / "run"
    args = ["eval", "spair", "--data-root", str(spair_root), "--out", str(out), *TINY]
    result = cli.invoke(app, args)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: interrupted; 1 of 4 pairs are saved in {out / 'results.jsonl'}; run the same command again to "
        "resume")
    rerun: list[str] = []
    ground_truth(monkeypatch, rerun)
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(rerun) == 3 and calls[0] not in rerun
    ids = [s.pair_id for s in PAIR_RECORDS.read(out / "results.jsonl")]
    assert len(ids) == len(set(ids)) == 4


def _corrupt(root: Path) -> Path:
    path = sorted((root / "PairAnnotation" / "test").glob("*.json"))[0]
    path.write_text('{"pair_id": 1,')
    return path


@pytest.mark.parametrize(("args", "expected"), [
    ([], "error: give the benchmark folder with --data-root DIR (or set VIDCORR_DATA_ROOT); add --download to "
         "fetch it there"),
    (["--data-root", "{tmp}/nowhere"], "error: {tmp}/nowhere: data root does not exist or is not a folder"),
    (["--data-root", "{root}", "--split", "val"],
     "error: {root}/Layout/large/val.txt: expected at least one pair, the split is empty"),
    (["--data-root", "{root}", "--split", "dev"], "error: unknown SPair split 'dev'; expected one of trn, val, test"),
    (["--data-root", "{root}", "--categories", "dog"], "error: unknown category 'dog'; this split has: aeroplane, cat"),
    (["--data-root", "{root}", "--limit", "0"],
     "error: no spair pairs to evaluate: the filters (--categories, --pairs, --limit) left none"),
    (["--data-root", "{root}", "--shard", "2/2"], "error: --shard index must be in 0..1, got '2/2'"),
    (["--data-root", "{root}", "--shard", "1:4"],
     "error: --shard must be 'i/n' (shard i of n, counted from 0), got '1:4'"),
    (["--data-root", "{root}", "--shard", "0/0"], "error: --shard count must be >= 1, got '0/0'"),
    (["--data-root", "{root}", "--alpha", "0"], "error: --alpha must be in (0, 1], got 0"),
    (["--data-root", "{root}", "--preset", "turbo"],
     "error: unknown preset 'turbo'; choose one of paper, balanced, fast"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, spair_root: Path, args: list[str], expected: str) -> None:
    out = tmp_path / "out"
    filled = [a.format(tmp=tmp_path, root=spair_root) for a in args]
    result = cli.invoke(app, ["eval", "spair", *filled, "--out", str(out), "--model", "tiny"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [expected.format(tmp=tmp_path, root=spair_root)]
    assert not out.exists()


def test_a_corrupt_annotation_is_one_line_naming_the_file(tmp_path: Path, spair_root: Path) -> None:
    path = _corrupt(spair_root)
    result = cli.invoke(app, ["eval", "spair", "--data-root", str(spair_root), "--out", str(tmp_path / "o"), *TINY])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: not valid JSON (Expecting ")


def test_report_of_nothing_and_download_offline_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli.invoke(app, ["eval", "report", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.jsonl'}: results file or folder not found"]

    source = download.SOURCES["spair"]
    offline = download.RemoteFile("http://127.0.0.1:9/SPair-71k.tar.gz", "SPair-71k.tar.gz", "tar", ".",
                                  source.files[0].required)
    monkeypatch.setitem(download.SOURCES, "spair", download.BenchmarkSource(
        "spair", source.folder, source.marker, (offline,), source.layout))
    result = cli.invoke(app, ["eval", "spair", "--data-root", str(tmp_path / "data"), "--download", *TINY])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot download http://127.0.0.1:9/SPair-71k.tar.gz (")
    assert lines[0].endswith("); without network, fetch it elsewhere and put in place <data-root>/SPair-71k/ holding "
                             "Layout/large/{trn,val,test}.txt, PairAnnotation/{trn,val,test}/*.json and "
                             "JPEGImages/<category>/*.jpg (extract SPair-71k.tar.gz there)")
