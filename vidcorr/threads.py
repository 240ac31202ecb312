"""How many CPU threads torch computes with: the cores this process may use, never more.

torch's own default is the machine's physical core count, whatever the process's CPU affinity or
its container's CPU quota says, so a container limited to 2 CPUs on a 64-core host starts 64 threads.
And torch's bundled OpenMP runtime (libgomp on Linux wheels) spin-waits between parallel regions by
default: measured on a 2-core machine under load (load average 3 to 6), one forward of the tiny UNet
took 330 ms with 2 threads and 20 ms with 1; with OMP_WAIT_POLICY=PASSIVE, 2 threads took 20 to 28 ms.
libgomp reads OMP_WAIT_POLICY once, when it is loaded (that is, when torch is first imported), so it
has to be in the environment before that: the `vidcorr` command sets it first thing
(cli/__init__.py); Python users set it themselves (`OMP_WAIT_POLICY=PASSIVE python ...`).
KMP_BLOCKTIME is the Intel/LLVM runtimes' knob: libgomp ignores it (measured: no change), and LLVM's
libomp (macOS wheels) also maps OMP_WAIT_POLICY=PASSIVE to a zero block time, so it is not set.

The policy (`choose_threads`), first match wins:
1. an explicit request (`--threads N`, `configure_threads(N)`);
2. OMP_NUM_THREADS, as torch itself would read it (the first number of a list);
3. a small model (the tiny test model): 1, as its operations are too small to split across threads;
4. the cores available: CPU affinity (os.sched_getaffinity), lowered to the cgroup CPU quota
   (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, of the process's cgroup and its parents),
   rounded down, at least 1.

Nothing happens at import. `configure_threads` applies the policy (the CLI calls it where the model
is loaded). The pipelines call `ensure_threads` at their start: the first time in a process, unless
`configure_threads` ran before, it lowers torch's thread count to the policy's choice (it never
raises it, so a smaller `torch.set_num_threads` of the caller's own stays).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vidcorr.errors import InputError

# libgomp and LLVM's libomp: sleep instead of spinning while waiting for work (see the docstring).
WAIT_POLICY_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class ThreadChoice:
    """threads: torch's intra-op thread count. reason: which rule chose it (`--threads`,
    `OMP_NUM_THREADS`, `small model`, `cores available`). cores: the cores available to the process
    (affinity and cgroup quota; fractional for a fractional quota). wait_policy: OMP_WAIT_POLICY as
    the environment has it (None: the runtime's spinning default)."""

    threads: int
    reason: str
    cores: float
    wait_policy: str | None


_configured: ThreadChoice | None = None


def wait_policy_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to `environ` (default os.environ) so OpenMP threads sleep when idle:
    those the user has not set (an empty value counts as unset, as libgomp rejects it)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in WAIT_POLICY_DEFAULTS.items() if not env.get(k, "").strip()}


def affinity_cores() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_cpu_limit(root: str | os.PathLike = "/") -> float | None:
    """The CPU quota of this process's cgroup (and its parents'), in cores; None for no quota.

    Reads /proc/self/cgroup and /proc/self/mountinfo under `root` (a fake tree in tests) to find the
    cgroup's folder, then cgroup v2's `cpu.max` ("max 100000" or "QUOTA PERIOD") or cgroup v1's
    `cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us`. The smallest quota on the way up wins.
    """
    base = Path(root)
    try:
        cgroups = (base / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    v2_path, v1_path = None, None
    for line in cgroups:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    v2_mounts, v1_mounts = _cgroup_mounts(base)
    limits = []
    if v1_path is not None:
        for mount_root, mount_point in v1_mounts:
            limits.append(_walk_up(base, mount_root, mount_point, v1_path, _v1_quota))
    if v2_path is not None:
        for mount_root, mount_point in v2_mounts:
            limits.append(_walk_up(base, mount_root, mount_point, v2_path, _v2_quota))
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _cgroup_mounts(base: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(cgroup2 mounts, cgroup v1 mounts carrying the cpu controller) as (mount root, mount point)."""
    try:
        lines = (base / "proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return [("/", "/sys/fs/cgroup")], [("/", "/sys/fs/cgroup/cpu"), ("/", "/sys/fs/cgroup/cpu,cpuacct")]
    v2, v1 = [], []
    for line in lines:
        # "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS"
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        mount = (_unescape(fields[3]), _unescape(fields[4]))
        if tail[0] == "cgroup2":
            v2.append(mount)
        elif tail[0] == "cgroup" and len(tail) >= 3 and "cpu" in tail[2].split(","):
            v1.append(mount)
    return v2, v1


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _walk_up(base: Path, mount_root: str, mount_point: str, cgroup_path: str, read) -> float | None:
    """Smallest quota from the process's cgroup folder up to the mount point."""
    top = base / mount_point.lstrip("/")
    relative = cgroup_path
    if mount_root != "/" and (cgroup_path == mount_root or cgroup_path.startswith(mount_root.rstrip("/") + "/")):
        relative = cgroup_path[len(mount_root):]
    elif mount_root != "/":
        relative = "/"  # the process's cgroup is outside this mount's view (a container): use the mount's top
    folder = top / relative.strip("/") if relative.strip("/") else top
    if not folder.is_dir():
        folder = top
    found = []
    while True:
        quota = read(folder)
        if quota is not None:
            found.append(quota)
        if folder == top or top not in folder.parents:
            break
        folder = folder.parent
    return min(found) if found else None


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, *period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period[0] if period else 100000)
    except (ValueError, ZeroDivisionError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def available_cores(root: str | os.PathLike = "/") -> float:
    """CPU affinity lowered to the cgroup quota: how many cores this process can actually use."""
    cores = float(affinity_cores())
    quota = cgroup_cpu_limit(root)
    return cores if quota is None else min(cores, quota)


def omp_num_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """OMP_NUM_THREADS as a count (the first entry of a nested list such as "4,2"); None if unset or
    not a positive number."""
    env = os.environ if environ is None else environ
    text = env.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose_threads(requested: int | None = None, *, small_model: bool = False,
                   environ: Mapping[str, str] | None = None, cores: float | None = None) -> ThreadChoice:
    """The policy of the module docstring, without applying it. `cores`: the cores available
    (default: measured with `available_cores`)."""
    env = os.environ if environ is None else environ
    if requested is not None and requested < 1:
        raise InputError(f"threads must be >= 1, got {requested}")
    have = available_cores() if cores is None else float(cores)
    policy = env.get("OMP_WAIT_POLICY") or None
    if requested is not None:
        return ThreadChoice(int(requested), "--threads", have, policy)
    from_env = omp_num_threads(env)
    if from_env is not None:
        return ThreadChoice(from_env, "OMP_NUM_THREADS", have, policy)
    if small_model:
        return ThreadChoice(1, "small model", have, policy)
    return ThreadChoice(max(1, math.floor(have)), "cores available", have, policy)


def configure_threads(requested: int | None = None, *, small_model: bool = False) -> ThreadChoice:
    """Choose torch's intra-op thread count by the policy and set it (torch.set_num_threads).

    requested: an explicit count (the CLI's --threads), or None for the policy. small_model: the
    model is a tiny test model (ldm.is_full_size is False). Returns what was chosen and why.
    """
    # torch is set up here, after the thread variables it reads at import are in place
    import torch

    global _configured
    choice = choose_threads(requested, small_model=small_model)
    torch.set_num_threads(choice.threads)
    _configured = choice
    return choice


def ensure_threads(small_model: bool = False) -> ThreadChoice | None:
    """Called by the pipelines: the first time in a process, unless configure_threads ran, lower
    torch's thread count to the policy's choice (never raise it). Returns the choice made now, or
    None when nothing was done."""
    # torch is set up here, after the thread variables it reads at import are in place
    import torch

    global _configured
    if _configured is not None:
        return None
    choice = choose_threads(small_model=small_model)
    current = torch.get_num_threads()
    if current > choice.threads:
        torch.set_num_threads(choice.threads)
    elif current < choice.threads:
        choice = ThreadChoice(current, "caller's own (lower)", choice.cores, choice.wait_policy)
    _configured = choice
    return choice


def _reset_for_tests() -> None:
    """Forget that the policy ran (tests only)."""
    global _configured
    _configured = None
