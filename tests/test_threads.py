"""The thread policy: explicit request > OMP_NUM_THREADS > small model > cores available (affinity,
cgroup quota); OpenMP waits passive; the CLI's --threads reaches torch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import random_image
from typer.testing import CliRunner

from vidcorr import InputError, threads
from vidcorr.io.images import write_image
from vidcorr_cli.app import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    threads._reset_for_tests()
    yield
    torch.set_num_threads(before)
    threads._reset_for_tests()


def test_an_explicit_request_wins_over_everything():
    choice = threads.choose_threads(3, small_model=True, environ={"OMP_NUM_THREADS": "5"}, cores=8)
    assert (choice.threads, choice.reason, choice.cores) == (3, "--threads", 8.0)


def test_omp_num_threads_is_honoured_before_the_small_model_rule_and_the_cores():
    assert threads.choose_threads(environ={"OMP_NUM_THREADS": "5"}, cores=2).threads == 5
    small = threads.choose_threads(small_model=True, environ={"OMP_NUM_THREADS": "4,2"}, cores=8)
    assert (small.threads, small.reason) == (4, "OMP_NUM_THREADS")
    # Not a count: ignored, as torch ignores it.
    assert threads.choose_threads(environ={"OMP_NUM_THREADS": "many"}, cores=6).threads == 6
    assert threads.choose_threads(environ={"OMP_NUM_THREADS": "0"}, cores=6).threads == 6


def test_small_models_run_single_threaded_and_large_ones_on_the_cores_available():
    assert (threads.choose_threads(small_model=True, environ={}, cores=16).threads,
            threads.choose_threads(small_model=True, environ={}, cores=16).reason) == (1, "small model")
    assert threads.choose_threads(environ={}, cores=16).threads == 16
    assert threads.choose_threads(environ={}, cores=2.5).threads == 2  # a quota of 2.5 CPUs: 2 threads
    assert threads.choose_threads(environ={}, cores=0.5).threads == 1


def test_a_bad_request_is_one_line():
    with pytest.raises(InputError, match=r"^threads must be >= 1, got 0$"):
        threads.choose_threads(0, environ={}, cores=4)


def test_wait_policy_is_added_only_where_the_user_set_none():
    assert threads.wait_policy_defaults({}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert threads.wait_policy_defaults({"OMP_WAIT_POLICY": " "}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert threads.wait_policy_defaults({"OMP_WAIT_POLICY": "ACTIVE"}) == {}


# --- cgroups, on fake /proc and /sys trees --------------------------------------------------------
def _tree(tmp_path: Path, cgroup: str, mountinfo: list[str], files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    (tmp_path / "proc/self/mountinfo").write_text("\n".join(mountinfo) + "\n")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate"


def test_cgroup_v2_quota_of_the_process_and_its_parents(tmp_path):
    root = _tree(tmp_path, "0::/user.slice/job\n", ["22 1 8:1 / / rw - ext4 /dev/sda1 rw", V2_MOUNT], {
        "sys/fs/cgroup/cpu.max": "max 100000\n",
        "sys/fs/cgroup/user.slice/cpu.max": "300000 100000\n",
        "sys/fs/cgroup/user.slice/job/cpu.max": "150000 100000\n",
    })
    assert threads.cgroup_cpu_limit(root) == 1.5
    (root / "sys/fs/cgroup/user.slice/cpu.max").write_text("50000 100000\n")  # a parent's smaller quota wins
    assert threads.cgroup_cpu_limit(root) == 0.5


def test_cgroup_v2_without_a_quota_is_none(tmp_path):
    root = _tree(tmp_path, "0::/\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": "max 100000\n"})
    assert threads.cgroup_cpu_limit(root) is None


def test_cgroup_v1_cfs_quota(tmp_path):
    mount = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct"
    other = "33 31 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"
    root = _tree(tmp_path, "5:memory:/job\n4:cpu,cpuacct:/job\n", [mount, other], {
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us": "200000\n",
        "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/memory/job/cpu.cfs_quota_us": "10000\n",  # not the cpu controller: never read
    })
    assert threads.cgroup_cpu_limit(root) == 2.0
    (root / "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(root) is None


def test_container_view_and_escaped_mount_points(tmp_path):
    # Inside a container the mount's root is the container's cgroup and the process sees its own path
    # from the host's side: the quota is at the mount point itself. The mount point has a space (\040).
    mount = r"40 31 0:38 /docker/abc /sys/fs/my\040cgroup rw - cgroup2 cgroup2 rw"
    root = _tree(tmp_path, "0::/docker/abc\n", [mount], {"sys/fs/my cgroup/cpu.max": "400000 100000\n"})
    assert threads.cgroup_cpu_limit(root) == 4.0


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert threads.cgroup_cpu_limit(tmp_path) is None


def test_available_cores_is_affinity_lowered_to_the_quota(tmp_path, monkeypatch):
    root = _tree(tmp_path, "0::/\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": "150000 100000\n"})
    monkeypatch.setattr(threads, "affinity_cores", lambda: 8)
    assert threads.available_cores(root) == 1.5
    monkeypatch.setattr(threads, "affinity_cores", lambda: 1)
    assert threads.available_cores(root) == 1.0


def test_affinity_is_the_process_mask():
    assert threads.affinity_cores() == len(os.sched_getaffinity(0))


# --- applying it ---------------------------------------------------------------------------------
def test_configure_threads_sets_torch(restore_threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.configure_threads(2).threads == 2
    assert torch.get_num_threads() == 2
    assert threads.configure_threads(small_model=True).threads == 1
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.configure_threads(small_model=True).reason == "OMP_NUM_THREADS"
    assert torch.get_num_threads() == 2


def test_the_pipelines_lower_threads_once_and_never_raise_them(restore_threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda root="/": 1.0)
    torch.set_num_threads(2)
    assert threads.ensure_threads().threads == 1
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    assert threads.ensure_threads() is None  # once per process
    assert torch.get_num_threads() == 2

    threads._reset_for_tests()
    monkeypatch.setattr(threads, "available_cores", lambda root="/": 4.0)
    torch.set_num_threads(1)  # the caller's own, lower count stays
    assert (threads.ensure_threads().threads, torch.get_num_threads()) == (1, 1)


def test_ensure_threads_defers_to_an_explicit_configuration(restore_threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads.configure_threads(2)
    assert threads.ensure_threads(small_model=True) is None
    assert torch.get_num_threads() == 2


def test_fit_applies_the_policy(restore_threads, tiny, small_cfg, monkeypatch):
    import vidcorr

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    vidcorr.fit(tiny, random_image(32, 32), [[10.0, 10.0]], small_cfg.replace(num_steps=0, restarts=1))
    assert torch.get_num_threads() == 1  # tiny model: one thread


def test_cli_threads_option_reaches_torch(restore_threads, tmp_path):
    image = write_image(tmp_path / "a.png", random_image(32, 32))
    result = CliRunner().invoke(app, ["fit", str(image), "--points", "10,10", "-o", str(tmp_path / "e.safetensors"),
                                      "--model", "tiny", "--steps", "0", "--restarts", "1", "--threads", "2",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2


def test_cli_rejects_zero_threads(tmp_path):
    image = write_image(tmp_path / "a.png", random_image(32, 32))
    result = CliRunner().invoke(app, ["fit", str(image), "--points", "10,10", "-o", str(tmp_path / "e.safetensors"),
                                      "--model", "tiny", "--threads", "0"])
    assert result.exit_code == 2
    assert "--threads" in result.output


def test_the_command_sets_passive_waits_before_torch_is_imported():
    code = ("import os, sys; import cli; "
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "False"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE", "False"]
