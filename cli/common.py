"""What every command shares: options, model loading, config building, errors, progress."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from vidcorr._testhooks import pause_point
from vidcorr.config import PRESET_NOTES, PRESETS, Config
from vidcorr.errors import InputError, VidcorrError
from vidcorr.progress import PlainProgress
from vidcorr.staging import Terminated, published

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class DType(str, Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Autocast(str, Enum):
    auto = "auto"
    none = "none"
    float16 = "float16"
    bfloat16 = "bfloat16"


PRESET_HELP = "; ".join(f"{name}: {note}" for name, note in PRESET_NOTES.items())

ModelOpt = Annotated[str, typer.Option(
    "--model", help="Hugging Face id, local diffusers folder, or 'tiny' (random weights, for tests only).")]
PresetOpt = Annotated[str, typer.Option("--preset", help=f"Hyper-parameter preset. {PRESET_HELP}.")]
PointsOpt = Annotated[str | None, typer.Option("--points", help="Query points 'x,y;x,y' in pixels.")]
GridOpt = Annotated[int | None, typer.Option("--grid", help="An N x N grid of points inside a 10% margin.")]
RefFrameOpt = Annotated[int, typer.Option("--ref-frame", help="Frame the --points/--grid are on.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run.")]
DTypeOpt = Annotated[DType, typer.Option(
    "--dtype", help="Weights' precision; auto = float32 (CUDA then computes under --autocast).")]
AutocastOpt = Annotated[Autocast, typer.Option(
    "--autocast", help="Compute in this precision under torch.autocast, with float32 weights, embeddings "
    "and loss; auto = float16 on CUDA with float32 weights, none elsewhere.")]
CompileOpt = Annotated[bool, typer.Option(
    "--compile", help="torch.compile the VAE encoder and the UNet's ResNet blocks; the first call at each "
    "batch size compiles (minutes on a CPU).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of every random draw (default: the preset's).")]
StepsOpt = Annotated[int | None, typer.Option("--steps", min=0, help="Fit steps per restart (default: preset's).")]
RestartsOpt = Annotated[int | None, typer.Option("--restarts", min=1, help="Restarts per point (default: preset's).")]
CropsOpt = Annotated[int | None, typer.Option("--crops", min=1, help="Locate crops per image (default: preset's).")]
ImageSizeOpt = Annotated[int | None, typer.Option(
    "--image-size", help="Side of the square model input in pixels (default 512, a multiple of 64).")]
InitPromptOpt = Annotated[str | None, typer.Option(
    "--init-prompt", help="Start embeddings from this prompt's CLIP encoding instead of noise.")]
MaxBatchOpt = Annotated[int | None, typer.Option(
    "--max-batch", min=1, help="Most samples per UNet call (default: sized to free memory).")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing output, whole, instead of refusing to run.")]


def build_config(preset: str, **overrides: Any) -> Config:
    """The preset with only the options the user set applied (None means 'not set')."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return Config.preset(preset, **{k: v for k, v in overrides.items() if v is not None})


def precision(device_type: str, dtype: DType, autocast: Autocast) -> tuple[Any, Any]:
    """(weights' torch dtype, autocast torch dtype or None) for --dtype and --autocast on a device type."""
    import torch

    weights = torch.float32 if dtype is DType.auto else getattr(torch, dtype.value)
    if autocast is Autocast.auto:
        compute = torch.float16 if device_type == "cuda" and weights == torch.float32 else None
    else:
        compute = None if autocast is Autocast.none else getattr(torch, autocast.value)
    if compute is not None and weights != torch.float32:
        raise InputError(f"--autocast {autocast.value} needs float32 weights: drop --dtype {dtype.value}")
    return weights, compute


def load_model(model: str, device: Device, dtype: DType, autocast: Autocast = Autocast.auto,
               compile_model: bool = False) -> Any:
    """An LDM from --model/--device/--dtype/--autocast/--compile; 'tiny' is announced loudly."""

    from vidcorr.model import LDM, resolve_device

    resolved = resolve_device(device.value)
    torch_dtype, compute = precision(resolved.type, dtype, autocast)
    if model == "tiny":
        err_console.print("[bold yellow]warning:[/] --model tiny has random weights: it exists for tests and "
                          "smoke runs, and its output means nothing", soft_wrap=True)
        ldm = LDM.tiny(device=resolved, dtype=torch_dtype)
    else:
        with status(f"loading {model} on {resolved}"):
            ldm = LDM.from_pretrained(model, device=resolved, dtype=torch_dtype)
    ldm.set_autocast(compute)
    return ldm.compile() if compile_model else ldm


def warn_if_slow(ldm: Any, cfg: Config, num_points: int, num_images: int) -> None:
    """On a CPU with a full-size model, measure and print the expected run time before starting."""
    if ldm.device.type != "cpu" or not ldm.is_full_size:
        return
    from vidcorr.estimate import estimate_run

    compiling = " (compiling the model first)" if ldm.compiled else ""
    with status(f"measuring this CPU's speed to estimate the run time{compiling}"):
        est = estimate_run(ldm, cfg, num_points, num_images)
    err_console.print(f"[bold yellow]warning:[/] a full-size model on a CPU: about {format_seconds(est.total_s)} "
                      f"(fit {format_seconds(est.fit_s)}, locate {format_seconds(est.locate_s)}; one UNet "
                      f"forward takes {est.unet_forward_s:.1f} s here). A GPU is hundreds of times faster; "
                      "--preset fast cuts the work.", soft_wrap=True)


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    if console.is_terminal:
        with console.status(message):
            yield
    else:
        yield


class RateColumn(ProgressColumn):
    """Units per second of a task (frames/s while tracking)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f}/s" if task.speed else "", style="progress.data.speed")


class StageProgress:
    """A rich progress bar per stage (fit steps, locate crops, frames); off a terminal, plain lines on
    stderr (one per stage's start and end, and every 10 s or 10 % in between)."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.labels = labels or {}
        self.enabled = console.is_terminal
        self.plain = None if self.enabled else PlainProgress(
            lambda line: err_console.print(line, highlight=False, markup=False, soft_wrap=True), self.labels)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=console, disable=not self.enabled, transient=False)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StageProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        pause_point(stage)
        if self.plain is not None:
            self.plain(stage, done, total)
            return
        task = self.tasks.get(stage)
        if task is None or self.progress.tasks[task].completed > done:
            task = self.progress.add_task(self.labels.get(stage, stage), total=total)
            self.tasks[stage] = task
        self.progress.update(task, completed=done, total=total)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(command: F) -> F:
    """Map user errors to one line on stderr and a non-zero exit; VIDCORR_DEBUG=1 re-raises."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = os.environ.get("VIDCORR_DEBUG", "") not in ("", "0")
        already_published = len(published())
        try:
            return command(*args, **kwargs)
        except VidcorrError as exc:
            if debug:
                raise
            raise fail(" ".join(str(exc).split()), exc.exit_code) from None
        except KeyboardInterrupt as exc:
            if debug:
                raise
            # Every output is staged (vidcorr.staging) and deleted on the way out, unless already in place.
            done = published()[already_published:]
            message = (f"interrupted after {', '.join(map(str, done))} was written whole" if done
                       else "interrupted; no complete-looking output was left behind")
            raise fail(message, 143 if isinstance(exc, Terminated) else 130) from None
        except OSError as exc:
            if debug:
                raise
            raise fail(f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)) from None

    return wrapper  # type: ignore[return-value]


def check_out_dir(out: Path) -> Path:
    """Fail early (before any model work) if --out could not be created or written; create nothing."""
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {str(out)!r} is a file")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"output folder {str(out)!r} is not writable")
    return out


def elapsed(start: float) -> str:
    return format_seconds(time.perf_counter() - start)


def is_interactive() -> bool:
    return sys.stdout.isatty()
