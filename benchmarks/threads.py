"""The README's tiny-model quick start, timed with vidcorr's thread policy and without it, on an
idle machine and beside one CPU-bound process.

    python -m benchmarks.threads [--repeats 1] [--json threads.json] [--modes policy,none]
                                 [--loads idle,busy] [--timeout-s 900]

Each run executes the quick-start block of README.md (the one tests/test_readme.py runs) as written,
in a fresh temporary folder, and times each command and the block.

- `policy`: the commands as a user runs them: the `vidcorr` command sets OMP_WAIT_POLICY=PASSIVE
  before torch loads, and vidcorr.threads chooses the thread count (1 for the tiny model).
- `none`: the state before the policy existed: a wrapper imports torch first, so its OpenMP runtime
  starts with its own spin-waiting default, then runs the same commands with `--threads N`, N being
  torch's own default count (the machine's physical cores).
- `busy`: one `python -c "while True: pass"` process runs beside the commands (started before,
  ended after, by its process id); `idle`: nothing else is started (the load average is recorded,
  since other users' processes are not under this script's control).

OMP_NUM_THREADS and OMP_WAIT_POLICY are removed from the commands' environment in both modes, so
that neither is set by the caller. Prints a table and writes the JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- quick-start: run by tests/test_readme.py -->"
MODEL_COMMANDS = ("track", "fit", "match")

# Imports torch before the CLI package can set OMP_WAIT_POLICY, then runs the CLI with torch's own
# default thread count: the behaviour before vidcorr.threads.
NO_POLICY_WRAPPER = (
    "import sys, torch; threads = torch.get_num_threads(); from vidcorr_cli.app import main; "
    "args = sys.argv[1:]; sys.argv = ['vidcorr', *args, *(['--threads', str(threads)] "
    "if args and args[0] in {commands!r} else [])]; main()"
)


def quick_start_commands(readme: Path = ROOT / "README.md") -> list[str]:
    """The commands of the README's tested quick-start block."""
    block = re.search(re.escape(MARKER) + r"\s*```bash\n(.*?)```", readme.read_text(), re.S)
    if block is None:
        raise SystemExit("README.md has no quick-start block marked for tests/test_readme.py")
    return [line for line in block.group(1).splitlines() if line.strip()]


def command_line(command: str, mode: str) -> list[str]:
    """The argv that runs one quick-start command in `mode`."""
    words = shlex.split(command)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    if words[0] != "vidcorr":
        raise SystemExit(f"unexpected quick-start command {command!r}")
    if mode == "policy":
        return [sys.executable, "-m", "vidcorr_cli", *words[1:]]
    return [sys.executable, "-c", NO_POLICY_WRAPPER.format(commands=MODEL_COMMANDS), *words[1:]]


def run_block(commands: list[str], mode: str, timeout_s: float) -> dict[str, Any]:
    """Run the block once in a fresh folder: per-command and total wall seconds, or where it failed."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    times, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "scripts").symlink_to(ROOT / "scripts")
        for command in commands:
            start = time.perf_counter()
            try:
                done = subprocess.run(command_line(command, mode), cwd=folder, env=env, capture_output=True,
                                      text=True, timeout=max(1.0, timeout_s - (start - started)))
            except subprocess.TimeoutExpired:
                return {"ok": False, "failed": command, "why": f"timed out after {timeout_s:.0f} s in total",
                        "commands_s": times, "total_s": time.perf_counter() - started}
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
                return {"ok": False, "failed": command, "why": tail, "commands_s": times,
                        "total_s": time.perf_counter() - started}
    return {"ok": True, "commands_s": times, "total_s": time.perf_counter() - started}


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def measure(mode: str, load: str, commands: list[str], timeout_s: float) -> dict[str, Any]:
    hog = None
    if load == "busy":
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # let it take its core before the run starts
    try:
        result = run_block(commands, mode, timeout_s)
    finally:
        if hog is not None:
            hog.terminate()
            hog.wait()
    return {"mode": mode, "load": load, "load_avg_1min_after": _load_average(), **result}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="policy,none", help="policy and/or none (default both)")
    parser.add_argument("--loads", default="idle,busy", help="idle and/or busy (default both)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each mode and load (default 1)")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up on one block after this (900)")
    parser.add_argument("--json", default="threads.json", help="report path (threads.json)")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    args.loads = [m for m in args.loads.split(",") if m]
    if not set(args.modes) <= {"policy", "none"} or not set(args.loads) <= {"idle", "busy"} or args.repeats < 1:
        parser.error("--modes takes policy,none; --loads takes idle,busy; --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    commands = quick_start_commands()
    runs = [measure(mode, load, commands, args.timeout_s)
            for _ in range(args.repeats) for load in args.loads for mode in args.modes]
    report = {"benchmark": "benchmarks.threads", "commands": commands, "logical_cpus": os.cpu_count(),
              "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
              "runs": runs}
    print(f"README quick start ({len(commands)} commands), {report['affinity_cpus']} CPUs")
    print(f"{'mode':<8}{'load':<6}{'total s':>9}  per command s            load after")
    for run in runs:
        total = f"{run['total_s']:.1f}" if run["ok"] else f"FAILED ({run['why']})"
        per = ", ".join(f"{t:.1f}" for t in run["commands_s"])
        print(f"{run['mode']:<8}{run['load']:<6}{total:>9}  {per:<24} {run['load_avg_1min_after']}")
    Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
