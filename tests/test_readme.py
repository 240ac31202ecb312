"""The README's quick start runs as written (the tiny-model block)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- quick-start: run by tests/test_readme.py -->"


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(MARKER) + r"\s*```bash\n(.*?)```", text, re.S)
    assert block, "the README lost its tested quick-start block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_quick_start_runs_as_written(tmp_path):
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    commands = quick_start_commands()
    assert commands[1].startswith("vidcorr track sample.mp4")
    for command in commands:
        result = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    tracks = np.load(tmp_path / "sample_vidcorr" / "tracks.npz")
    assert tracks["points"].shape == (72, 2, 2)
    for name in ("tracks.csv", "tracks.json", "annotated.mp4", "embeddings.safetensors", "again.mp4"):
        assert (tmp_path / "sample_vidcorr" / name).stat().st_size > 0
