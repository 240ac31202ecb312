"""benchmarks.gpu: refuses to run without CUDA in one line; its budget planner and stages, on the tiny
model on a CPU through the private suite function (no timing is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import gpu, speed  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal cannot be seen")
def test_refuses_without_cuda_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--json", str(tmp_path / "gpu.json")],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: benchmarks.gpu needs a CUDA GPU and this torch ({torch.__version__}) sees none; use "
        "benchmarks.speed on a CPU"]
    assert not (tmp_path / "gpu.json").exists()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_allows_what_fits_and_records_what_it_skips():
    clock = FakeClock()
    budget = gpu.Budget(100.0, clock=clock)
    assert budget.allow("a", 60.0)
    clock.now = 50.0
    assert budget.left() == 50.0
    assert budget.slot(80.0) == 50.0 and budget.slot(20.0) == 20.0
    assert not budget.allow("b", 40.0, reserve_s=20.0)
    clock.now = 120.0
    assert budget.slot(10.0) == 0.0
    assert budget.skipped == [{"stage": "b", "estimate_s": 40.0, "left_s": 50.0, "reserved_s": 20.0}]


def test_units_that_fit():
    assert gpu.units_that_fit(0.5, wanted=129, slot_s=100.0) == 129   # the whole schedule fits
    assert gpu.units_that_fit(2.0, wanted=129, slot_s=31.0) == 15     # as many as fit
    assert gpu.units_that_fit(50.0, wanted=129, slot_s=10.0, least=2) == 2  # never fewer than `least`


# The JHMDB-sized video, shrunk: 2 points through 3 frames of 64x48, paper in float32 and fast under bfloat16.
VIDEO = gpu.VideoSpec(points=2, frames=3, size_wh=(64, 48), precisions={"paper": "float32", "fast": "bfloat16"})


def _suite(tiny, **changes):
    settings = dict(points=2, image_size=64, fit_steps=2, restarts=2, track_frames={"fast": 2, "paper": 1},
                    autocasts=("bfloat16",), compile=False, video=VIDEO)
    settings.update(changes)
    return gpu.Suite(tiny, torch.device("cpu"), **settings)


def _stand_in_fit_labels(calls):
    """Where this checkout has no fit_labels: a stand-in with its signature that runs each point's first label
    (enough for the stage's arithmetic, which does not depend on the fit's math)."""
    import vidcorr

    def fit_labels(ldm, frames, labels, cfg=None, progress=None, point_ids=None):
        calls.append((sorted(frames), [rows.shape for rows in labels.labels], cfg.num_steps))
        return vidcorr.fit(ldm, frames[0], np.stack([rows[0, 1:] for rows in labels.labels]), cfg)
    return fit_labels


def test_every_stage_runs_when_the_budget_allows(tiny):
    report = gpu.run_suite(_suite(tiny), gpu.Budget(1e9, clock=FakeClock()))
    assert set(report["fit"]) == {"vidcorr_bfloat16", "vidcorr_float32", "seed_bfloat16", "seed_float32"}
    vidcorr_fit = report["fit"]["vidcorr_float32"]
    # vidcorr ran the whole (2-step) schedule on both points and restarts: nothing extrapolated.
    assert (vidcorr_fit["steps_run"], vidcorr_fit["points_run"], vidcorr_fit["restarts_run"]) == (2, 2, 2)
    assert not vidcorr_fit["extrapolated"]
    assert vidcorr_fit["paper_fit_10_points_s"] == pytest.approx(vidcorr_fit["wall_s"])
    # The seed's schedule: one point, one restart, scaled by points x restarts.
    seed_fit = report["fit"]["seed_float32"]
    assert (seed_fit["points_run"], seed_fit["restarts_run"], seed_fit["extrapolated"]) == (1, 1, True)
    assert seed_fit["paper_fit_10_points_s"] == pytest.approx(seed_fit["wall_s"] * 2 / seed_fit["steps_run"] * 4)
    assert {preset: r["frames"] for preset, r in report["track"].items()} == {"fast": 2, "paper": 1}
    assert report["track"]["fast"]["frames_per_s"] == pytest.approx(2 / report["track"]["fast"]["wall_s"])
    assert set(report["located_difference_px"]) == {"bfloat16"}
    difference = report["located_difference_px"]["bfloat16"]
    assert np.isfinite(difference["max_px"]) and 0 <= difference["mean_px"] <= difference["max_px"]
    # The JHMDB-sized video: the whole schedule and every frame ran (nothing extrapolated), each preset in its
    # precision; the video's time is the fit's plus every frame after the first.
    assert set(report["video"]) == {"paper", "fast"}
    for preset, precision in VIDEO.precisions.items():
        video = report["video"][preset]
        assert (video["precision"], video["points"], video["frames"], video["size"]) == (precision, 2, 3, [64, 48])
        assert video["fit"]["steps_run"] == 2 and video["track"]["frames_run"] == 2 and not video["extrapolated"]
        assert video["fit"]["schedule_s"] == pytest.approx(video["fit"]["wall_s"])
        assert video["video_s"] == pytest.approx(video["fit"]["wall_s"] + video["track"]["wall_s"])
        assert video["frames_per_s"] == pytest.approx(3 / video["video_s"])
    assert report["compile"] is None
    labels_skipped = [s for s in report["skipped"] if s["stage"] == "fit 3 labels"]
    if report["labels"] is None:  # this checkout has no several-label fit: said so, in the skipped list
        assert labels_skipped == [{"stage": "fit 3 labels", "reason": speed.LABELS_MISSING}]
    else:
        assert labels_skipped == [] and report["labels"]["labels"] == 3
    assert [s for s in report["skipped"] if s not in labels_skipped] == [{"stage": "compile", "reason": "--no-compile"}]
    targets = report["targets"]
    assert targets["precision"] == "bfloat16"
    assert targets["speedup_vs_seed"] == pytest.approx(report["fit"]["seed_bfloat16"]["paper_fit_10_points_s"]
                                                       / report["fit"]["vidcorr_bfloat16"]["paper_fit_10_points_s"])
    assert targets["peak_gib"] is None and targets["peak_met"] is None  # no CUDA memory on a CPU
    text = gpu.format_report({"machine": {"device": "cpu"}, "settings": {"image_size": 64, "points": 2,
                                                                          "budget_s": 1e9}, "wall_s": 1.0, **report})
    rows = [line.split()[:3] for line in text.splitlines()]
    assert ["fit", "seed", "float32"] in rows and ["track", "paper", format(report["track"]["paper"]["per_frame_s"],
                                                                           ".3g")] in rows
    assert text.splitlines()[-1] == "skipped: compile (--no-compile)"
    assert "JHMDB-sized video: 2 points, 3 frames at 64x48" in text
    assert [line.split()[:2] for line in text.splitlines() if line.startswith(("paper ", "fast "))] == [
        ["paper", "float32"], ["fast", "bfloat16"]]


def test_the_labels_stage_fits_k_labels_per_point_and_compares_with_k_one_label_fits(tiny, monkeypatch):
    calls = []
    if speed.find_fit_labels() is None:
        monkeypatch.setattr(speed, "find_fit_labels", lambda: _stand_in_fit_labels(calls))
    suite = _suite(tiny, autocasts=(), labels=3, track_frames={"fast": 1, "paper": 1})
    report = gpu.run_suite(suite, gpu.Budget(1e9, clock=FakeClock()))
    labels = report["labels"]
    if calls:  # the stand-in saw what the stage asks for: warm-up, probe, the schedule; 2 points x 3 frames
        assert calls == [([0, 1, 2], [(3, 3), (3, 3)], steps) for steps in (1, 2, 2)]
    assert (labels["labels"], labels["points"], labels["restarts"], labels["steps_run"]) == (3, 2, 2, 2)
    assert not labels["extrapolated"] and labels["paper_fit_s"] == pytest.approx(labels["wall_s"])
    one = report["fit"]["vidcorr_float32"]["paper_fit_10_points_s"]
    assert labels["one_label_fit_s"] == one
    assert labels["over_k_one_label_fits"] == pytest.approx(labels["paper_fit_s"] / (3 * one))
    text = gpu.format_report({"machine": {"device": "cpu"}, "settings": {"image_size": 64, "points": 2,
                                                                          "budget_s": 1e9}, "wall_s": 1.0, **report})
    assert "fit with 3 labels per point (2 points, paper schedule)" in text


def test_an_exhausted_budget_skips_every_stage_and_says_so(tiny):
    report = gpu.run_suite(_suite(tiny, compile=True), gpu.Budget(0.0, clock=FakeClock()))
    assert report["fit"] == {} and report["track"] == {} and report["located_difference_px"] == {}
    assert report["labels"] is None and report["video"] == {}
    assert [s["stage"] for s in report["skipped"]] == [
        "fit vidcorr bfloat16", "fit vidcorr float32", "fit seed bfloat16", "fit seed float32", "track fast",
        "track paper", "fit 3 labels", "video paper fit", "video fast fit", "compile"]
    assert report["skipped"][-1]["estimate_s"] == gpu.COMPILE_ESTIMATE_S
    assert all(value is None for key, value in report["targets"].items() if key != "precision")
    text = gpu.format_report({"machine": {"device": "cpu"}, "settings": {"image_size": 64, "points": 2,
                                                                          "budget_s": 0.0}, "wall_s": 0.0, **report})
    assert "skipped: compile (estimate 120.0 s, 0.0 s left)" in text
    assert "paper fit of 10 points - s <= 60: not measured" in text


def test_a_tight_cap_runs_fewer_steps_and_extrapolates(tiny):
    caps = dict.fromkeys(gpu.CAPS_S, 0.0)  # every stage: the least it can run
    video = gpu.VideoSpec(points=2, frames=5, size_wh=(64, 48), precisions={"fast": "float32"})
    report = gpu.run_suite(_suite(tiny, fit_steps=50, caps_s=caps, autocasts=(), track_frames={"fast": 1, "paper": 1},
                                  video=video), gpu.Budget(1e9, clock=FakeClock()))
    primary = report["fit"]["vidcorr_float32"]
    assert primary["steps_run"] == 2 and primary["extrapolated"]
    assert primary["paper_fit_10_points_s"] == pytest.approx(primary["wall_s"] * 50 / 2)
    # The video: 2 of 50 steps and 1 of the 4 frames after the first, each scaled to the whole.
    fast = report["video"]["fast"]
    assert (fast["fit"]["steps_run"], fast["track"]["frames_run"], fast["extrapolated"]) == (2, 1, True)
    assert fast["fit"]["schedule_s"] == pytest.approx(fast["fit"]["wall_s"] * 50 / 2)
    assert fast["video_s"] == pytest.approx(fast["fit"]["schedule_s"] + fast["track"]["wall_s"] * 4)


def test_caps_before_the_compile_leave_it_its_estimate():
    """At the default budget, the caps of every stage before the compile, with the model build, the located
    differences and a probe per stage, leave the compile stage its estimate (CAPS are maxima)."""
    caps = gpu.CAPS_S
    before_compile = (caps["fit_primary"] + 2 * caps["fit_other"] + 3 * caps["seed"] + caps["track_fast"]
                      + caps["track_paper"] + caps["labels_fit"] + 2 * (caps["video_fit"] + caps["video_track"]))
    assert before_compile == 227.0
    stages = 1 + 2 + 3 + 2 + 1 + 2 * 2  # fits, seed's fits, tracking, labels, the video's fit and track per preset
    overheads = (gpu.OVERHEADS_S["model_build"] + gpu.OVERHEADS_S["located_differences"]
                 + stages * gpu.OVERHEADS_S["probe_per_stage"])
    assert before_compile + overheads + gpu.COMPILE_ESTIMATE_S <= gpu.DEFAULT_BUDGET_S
