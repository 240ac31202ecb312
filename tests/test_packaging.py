"""The install declares every data file it ships: setuptools prints a 40-line warning for a folder of data files that
is not a listed package (the list itself is checked by tests/test_layers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).parent.parent


def test_every_data_file_is_declared_in_its_listed_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-data"] == {"vidcorr.web.assets": ["*.html", "*.css", "*.js"]}
    for folder in [ROOT / "cli", ROOT / "vidcorr", *(p for p in (ROOT / "vidcorr").rglob("*") if p.is_dir())]:
        if folder.name == "__pycache__":
            continue
        name = "vidcorr_cli" if folder.name == "cli" else ".".join(folder.relative_to(ROOT).parts)
        data = {f.name for f in folder.iterdir() if f.is_file() and f.suffix not in (".py", ".pyc")}
        declared = {f.name for pattern in setuptools["package-data"].get(name, []) for f in folder.glob(pattern)}
        assert data == declared, name
        assert name in setuptools["packages"]
