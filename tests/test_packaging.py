"""The install lists every folder it ships: setuptools prints a 40-line warning for a folder that Python could import
as a package (any folder under a listed one, data files included) but that `packages` leaves out."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).parent.parent


def test_every_shipped_folder_is_a_listed_package_and_its_data_files_are_declared():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {"vidcorr_cli": ROOT / "cli"} | {
        ".".join(p.relative_to(ROOT).parts): p for p in [ROOT / "vidcorr", *(ROOT / "vidcorr").rglob("*")]
        if p.is_dir() and p.name != "__pycache__"}
    assert listed == set(folders)
    for name, folder in folders.items():
        data = {f.name for f in folder.iterdir() if f.is_file() and f.suffix not in (".py", ".pyc")}
        declared = {f.name for pattern in setuptools.get("package-data", {}).get(name, [])
                    for f in folder.glob(pattern)}
        assert data == declared, name
    assert setuptools["package-data"] == {"vidcorr.web.assets": ["*.html", "*.css", "*.js"]}
