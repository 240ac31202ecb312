"""The architecture's promises: commands that need no model never import torch, the library never imports the
CLI, the viewer and the visual files never reach up into eval/, and no two library modules import each other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidcorr.sample import write_synthetic_video
from vidcorr.tracks import Tracks

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "vidcorr"
MODEL_STACK = ("torch", "diffusers", "transformers")


def _imported_in_fresh_process(code: str, cwd: Path) -> list[str]:
    """Run `code` in a new interpreter; the model-stack modules it left in sys.modules."""
    probe = code + f"\nimport sys\nprint(sorted(m for m in {MODEL_STACK!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def _command(args: list[str]) -> str:
    # Without standalone mode a command's typer.Exit (every error) comes back as the return value.
    return ("from vidcorr_cli.app import app\n"
            f"try:\n    code = app({args!r}, standalone_mode=False)\nexcept SystemExit as exc:\n"
            "    code = exc.code\n"
            "assert not code, code\n")


@pytest.fixture(scope="module")
def track_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video, its tracks.npz, an eval results folder and a viewer folder, made without a model."""
    folder = tmp_path_factory.mktemp("layers")
    frames = [np.full((32, 48, 3), 10 * t, dtype=np.uint8) for t in range(4)]
    write_synthetic_video(folder / "clip.mp4", frames, fps=10)
    points = np.tile(np.array([[[10.0, 12.0]]]), (4, 1, 1))
    tracks = Tracks(points=points, visible=np.ones((4, 1), bool), confidence=np.ones((4, 1)),
                    queries=np.array([[0.0, 10.0, 12.0]]), frame_indices=np.arange(4), fps=10.0, size=(48, 32))
    tracks.save_all(folder / "t")
    return folder


def test_import_vidcorr_is_cheap_and_resolves_names_on_first_use(tmp_path: Path) -> None:
    assert _imported_in_fresh_process("import vidcorr, vidcorr.tracks, vidcorr.render, vidcorr.eval.report", tmp_path) \
        == []
    assert {"torch", "diffusers"} <= set(_imported_in_fresh_process(
        "import vidcorr\nassert callable(vidcorr.track) and vidcorr.LDM", tmp_path))
    # A submodule named like a public function does not shadow the function.
    assert _imported_in_fresh_process(
        "import vidcorr.track, vidcorr.fit, vidcorr\nimport types\n"
        "assert not isinstance(vidcorr.track, types.ModuleType) and vidcorr.track.__name__ == 'track'\n"
        "assert vidcorr.fit.__module__ == 'vidcorr.fit'", tmp_path)[1] == "torch"


@pytest.mark.parametrize("args", [
    ["--help"], ["track", "--help"], ["eval", "spair", "--help"],
    ["render", "{folder}/clip.mp4", "{folder}/t/tracks.npz", "-o", "{folder}/again.mp4"],
    ["eval", "report", "--help"],
], ids=["help", "track-help", "eval-help", "render", "report-help"])
def test_commands_without_a_model_never_import_torch(track_folder: Path, args: list[str]) -> None:
    args = [a.format(folder=track_folder) for a in args]
    assert _imported_in_fresh_process(_command(args), track_folder) == []
    if args[0] == "render":
        assert (track_folder / "again.mp4").stat().st_size > 0


def test_view_and_eval_report_never_import_torch(tmp_path: Path) -> None:
    from synthetic_view import write_eval_run

    run = write_eval_run(tmp_path)
    assert _imported_in_fresh_process(_command(["view", str(run), "--no-open"]), tmp_path) == []
    assert (run / "index.html").is_file()
    assert _imported_in_fresh_process(_command(["eval", "report", str(run)]), tmp_path) == []
    assert any(run.glob("*.md"))


def _top_level_imports(path: Path) -> set[str]:
    """The vidcorr modules `path` imports at module level (not inside functions or TYPE_CHECKING)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _library_graph() -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in LIBRARY.rglob("*.py")}
    return {name: {m for m in _top_level_imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_the_library_never_imports_the_cli_or_the_terminal() -> None:
    for path in LIBRARY.rglob("*.py"):
        imported = _top_level_imports(path)
        assert not {m for m in imported if m.split(".")[0] in ("cli", "vidcorr_cli", "typer", "rich")}, path


def test_no_upward_imports_and_no_cycles() -> None:
    graph = _library_graph()
    # The viewer and the files it reads sit beside the pipelines, below eval/.
    for name in ("vidcorr.view", "vidcorr.visuals", "vidcorr.runs", "vidcorr.outputs", "vidcorr.pipelines"):
        assert not {m for m in graph[name] if m.startswith("vidcorr.eval")}, name
    # The method's steps never import a pipeline.
    for name in ("vidcorr.fit", "vidcorr.locate", "vidcorr.model", "vidcorr.attention", "vidcorr.track"):
        assert not graph[name] & {"vidcorr.pipelines", "vidcorr.runs", "vidcorr.view", "vidcorr.visuals"}, name
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for child in sorted(graph[name]):
            assert state.get(child) != 1, "import cycle: " + " -> ".join([*path, name, child])
            if child not in state:
                visit(child, [*path, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
