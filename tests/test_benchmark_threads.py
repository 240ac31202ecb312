"""benchmarks.threads: what it runs in each mode (running it is the lead's measurement, not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import threads  # noqa: E402


def test_it_times_the_readme_quick_start_block():
    commands = threads.quick_start_commands()
    assert commands[0].startswith("python scripts/make_sample_clip.py")
    assert commands[1].startswith("vidcorr track sample.mp4")


def test_policy_mode_runs_the_cli_as_users_do():
    assert threads.command_line("vidcorr track a.mp4 --model tiny", "policy") == [
        sys.executable, "-m", "vidcorr_cli", "track", "a.mp4", "--model", "tiny"]
    assert threads.command_line("python scripts/x.py out.mp4", "none") == [sys.executable, "scripts/x.py", "out.mp4"]


def test_no_policy_mode_loads_torch_before_the_cli_and_restores_torchs_thread_count():
    argv = threads.command_line("vidcorr track a.mp4 --model tiny", "none")
    assert argv[:2] == [sys.executable, "-c"] and argv[3:] == ["track", "a.mp4", "--model", "tiny"]
    code = argv[2]
    assert code.index("import sys, torch") < code.index("from vidcorr_cli.app import main")
    assert "'--threads', str(threads)" in code and "('track', 'fit', 'match')" in code
