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

from benchmarks import gpu  # noqa: E402


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


def _suite(tiny, **changes):
    settings = dict(points=2, image_size=64, fit_steps=2, restarts=2, track_frames={"fast": 2, "paper": 1},
                    autocasts=("bfloat16",), compile=False)
    settings.update(changes)
    return gpu.Suite(tiny, torch.device("cpu"), **settings)


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
    assert report["compile"] is None
    assert report["skipped"] == [{"stage": "compile", "reason": "--no-compile"}]
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


def test_an_exhausted_budget_skips_every_stage_and_says_so(tiny):
    report = gpu.run_suite(_suite(tiny, compile=True), gpu.Budget(0.0, clock=FakeClock()))
    assert report["fit"] == {} and report["track"] == {} and report["located_difference_px"] == {}
    assert [s["stage"] for s in report["skipped"]] == [
        "fit vidcorr bfloat16", "fit vidcorr float32", "fit seed bfloat16", "fit seed float32", "track fast",
        "track paper", "compile"]
    assert report["skipped"][-1]["estimate_s"] == gpu.COMPILE_ESTIMATE_S
    assert all(value is None for key, value in report["targets"].items() if key != "precision")
    text = gpu.format_report({"machine": {"device": "cpu"}, "settings": {"image_size": 64, "points": 2,
                                                                          "budget_s": 0.0}, "wall_s": 0.0, **report})
    assert "skipped: compile (estimate 120.0 s, 0.0 s left)" in text
    assert "paper fit of 10 points - s <= 60: not measured" in text


def test_a_tight_cap_runs_fewer_steps_and_extrapolates(tiny):
    caps = dict.fromkeys(gpu.CAPS_S, 0.0)  # every stage: the least it can run
    report = gpu.run_suite(_suite(tiny, fit_steps=50, caps_s=caps, autocasts=(), track_frames={"fast": 1, "paper": 1}),
                           gpu.Budget(1e9, clock=FakeClock()))
    primary = report["fit"]["vidcorr_float32"]
    assert primary["steps_run"] == 2 and primary["extrapolated"]
    assert primary["paper_fit_10_points_s"] == pytest.approx(primary["wall_s"] * 50 / 2)
