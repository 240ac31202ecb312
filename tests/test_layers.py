"""The architecture's promises, checked on the code: commands that need no model never import torch; the library
never imports the CLI or the terminal; packages import only the layers below them (`LAYERS`); no import cycle,
function-local imports included; no private name imported from another module; and every function-local import
says why it is there.

The checks read a tree of files, so each is also run on a small tree made to break it (`test_the_checks_catch_*`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vidcorr.io.sample import write_synthetic_video
from vidcorr.io.tracks import Tracks

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
    numpy_only = ("import vidcorr, vidcorr.io.tracks, vidcorr.io.render, vidcorr.io.points, vidcorr.eval.report, "
                  "vidcorr.web")
    assert _imported_in_fresh_process(numpy_only, tmp_path) == []
    assert {"torch", "diffusers"} <= set(_imported_in_fresh_process(
        "import vidcorr\nassert callable(vidcorr.track) and vidcorr.LDM", tmp_path))
    # The public functions are the functions, whatever was imported before them.
    assert _imported_in_fresh_process(
        "import vidcorr.method.track, vidcorr.method.fit, vidcorr\nimport types\n"
        "assert not isinstance(vidcorr.track, types.ModuleType) and vidcorr.track.__name__ == 'track'\n"
        "assert vidcorr.fit.__module__ == 'vidcorr.method.fit'", tmp_path)[1] == "torch"


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


LAYERS: dict[str, set[str]] = {
    # package: the packages it may import (itself included). "base" is the top-level modules (config, errors,
    # validate, progress, threads, ...): shared by every layer, they import only each other.
    "base": {"base"},
    "io": {"base", "io"},
    "runs": {"base", "io", "runs"},
    "method": {"base", "io", "method"},
    "web": {"base", "io", "runs", "web"},
    "pipelines": {"base", "io", "runs", "method", "web", "pipelines"},
    "eval": {"base", "io", "runs", "method", "web", "pipelines", "eval"},
}
"""What may import what, between vidcorr's packages. `vidcorr/__init__.py` (the public face, lazy) is above all."""


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the checks see it."""

    source: str  # the importing module, dotted
    target: str  # the imported module, dotted (a name imported from a package counts as its submodule if one exists)
    names: tuple[str, ...]  # the names taken (``from target import names``); () for ``import target``
    local: bool  # inside a function
    line: int
    reason: bool  # a comment on the line or right above it (through the import lines of its group)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _modules(root: Path, package: str) -> dict[str, Path]:
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
            for p in (root / package).rglob("*.py")}


def _has_reason(lines: list[str], line: int) -> bool:
    """A comment on `line` (1-based), on another import line of its group, or on the line above the group."""
    at = line - 1
    if "#" in lines[at]:
        return True
    while at > 0 and lines[at - 1].strip().startswith(("import ", "from ")):
        at -= 1
        if "#" in lines[at]:
            return True
    return at > 0 and lines[at - 1].strip().startswith("#")


def _file_imports(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    text = path.read_text()
    lines = text.splitlines()
    own_package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(name, alias.name, (), local, child.lineno, _has_reason(lines, child.lineno)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = own_package.split(".")
                    base = ".".join(parts[:len(parts) - child.level + 1] + ([base] if base else []))
                for alias in child.names:
                    target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    taken = () if target != base else (alias.name,)
                    found.append(Import(name, target, taken, local, child.lineno, _has_reason(lines, child.lineno)))
            visit(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(text), False)
    return found


def read_imports(root: Path, package: str = "vidcorr") -> list[Import]:
    """Every import in `package`'s files (not under TYPE_CHECKING), module level and function-local."""
    modules = _modules(root, package)
    return [imp for name, path in modules.items() for imp in _file_imports(name, path, modules)]


def layer_of(module: str, package: str = "vidcorr") -> str | None:
    """The layer (a LAYERS key) of a module of `package`; None for the package's face and for other packages."""
    parts = module.split(".")
    if parts[0] != package or len(parts) == 1:
        return None
    return parts[1] if parts[1] in LAYERS else "base"


def upward_imports(imports: list[Import], package: str = "vidcorr") -> list[str]:
    bad = []
    for imp in imports:
        src, dst = layer_of(imp.source, package), layer_of(imp.target, package)
        if src is not None and dst is not None and dst not in LAYERS[src]:
            bad.append(f"{imp.source}:{imp.line} ({src}) imports {imp.target} ({dst})")
    return bad


def import_cycles(imports: list[Import], package: str = "vidcorr") -> list[str]:
    """Cycles between `package`'s modules, function-local imports included (the face is left out: it imports
    lazily, by name)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.source != package and imp.target != package and imp.target.split(".")[0] == package:
            if imp.target != imp.source:
                graph.setdefault(imp.source, set()).add(imp.target)
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for child in sorted(graph.get(name, ())):
            if state.get(child) == 1:
                cycles.append(" -> ".join([*(path[path.index(child):] if child in path else []), name, child]))
            elif child not in state:
                visit(child, [*path, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    return cycles


def private_imports(imports: list[Import], package: str = "vidcorr") -> list[str]:
    return [f"{imp.source}:{imp.line} imports {name} from {imp.target}" for imp in imports
            if imp.target.split(".")[0] == package and imp.target != imp.source
            for name in imp.names if name.startswith("_") and not name.startswith("__")]


def unexplained_local_imports(imports: list[Import]) -> list[str]:
    return [f"{imp.source}:{imp.line} imports {imp.target} inside a function without a comment saying why"
            for imp in imports if imp.local and not imp.reason]


def test_the_library_never_imports_the_cli_or_the_terminal() -> None:
    bad = [imp for imp in read_imports(ROOT) if imp.target.split(".")[0] in ("cli", "vidcorr_cli", "typer", "rich")]
    assert bad == []


def test_packages_import_only_the_layers_below_them() -> None:
    assert upward_imports(read_imports(ROOT)) == []


def test_no_import_cycles_function_local_imports_included() -> None:
    assert import_cycles(read_imports(ROOT)) == []


def test_no_private_name_is_imported_from_another_module() -> None:
    assert private_imports(read_imports(ROOT)) == []


def test_every_function_local_import_says_why() -> None:
    assert unexplained_local_imports(read_imports(ROOT)) == []


def test_every_library_module_belongs_to_a_layer() -> None:
    assert set(LAYERS) - {"base"} <= {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    for name in _modules(ROOT, "vidcorr"):
        assert name == "vidcorr" or layer_of(name) in LAYERS, name


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"pkg/__init__.py": "", "pkg/io/__init__.py": "", "pkg/method/__init__.py": "",
                       **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_checks_catch_an_upward_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"pkg/io/frames.py": "from pkg.method.model import LDM\n",
                            "pkg/method/model.py": "LDM = 1\n"})
    assert upward_imports(read_imports(root, "pkg"), "pkg") == [
        "pkg.io.frames:1 (io) imports pkg.method.model (method)"]


def test_the_checks_catch_a_cycle_through_a_function_local_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"pkg/io/video.py": "from pkg.io.frames import Reader\n",
                            "pkg/io/frames.py": "def f():\n    # why\n    from pkg.io.video import open_video\n"})
    assert import_cycles(read_imports(root, "pkg"), "pkg") == ["pkg.io.frames -> pkg.io.video -> pkg.io.frames"]


def test_the_checks_catch_a_private_import_and_an_unexplained_local_one(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"pkg/io/video.py": "def _check_fps(x):\n    return x\n",
                            "pkg/io/frames.py": "from pkg.io.video import _check_fps\n"
                            "def f():\n    from pkg.io.video import _check_fps as c\n    return c\n"})
    imports = read_imports(root, "pkg")
    assert private_imports(imports, "pkg") == ["pkg.io.frames:1 imports _check_fps from pkg.io.video",
                                               "pkg.io.frames:3 imports _check_fps from pkg.io.video"]
    assert unexplained_local_imports(imports) == [
        "pkg.io.frames:3 imports pkg.io.video inside a function without a comment saying why"]


def test_every_package_of_the_tree_is_installed() -> None:
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in LIBRARY.rglob("__init__.py")} | {"vidcorr_cli"}
    assert listed == found
