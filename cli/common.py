"""What every command shares: options, model loading, config building, errors, progress."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vidcorr.config import DEFAULT_MODEL, PRESET_NOTES, Config, config_for
from vidcorr.errors import InputError, VidcorrError
from vidcorr.io.staging import Terminated, published
from vidcorr.progress import format_duration

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
MODEL, METHOD, OUTPUT = "Model", "Method", "Output"
"""The --help panels: what runs the method, the method's settings, what is written."""

PointsOpt = Annotated[str | None, typer.Option("--points", help="Query points 'x,y;x,y' in pixels.")]
GridOpt = Annotated[int | None, typer.Option("--grid", help="An N x N grid of points inside a 10% margin.")]
RefFrameOpt = Annotated[int, typer.Option("--ref-frame", help="Frame the --points/--grid are on.")]


@dataclass(frozen=True)
class ModelOptions:
    """The options every model command shares, declared once (see :func:`model_options`).

    `preset` is None where the command's own default applies (``track --embeddings`` keeps the file's config);
    the method options are None where not set, so the library's defaults are never restated.
    """

    model: str = DEFAULT_MODEL
    preset: str | None = "paper"
    device: Device = Device.auto
    dtype: DType = DType.auto
    autocast: Autocast = Autocast.auto
    compile_model: bool = False
    seed: int | None = None
    steps: int | None = None
    restarts: int | None = None
    crops: int | None = None
    image_size: int | None = None
    init_prompt: str | None = None
    max_batch: int | None = None
    threads: int | None = None

    def overrides(self) -> dict[str, Any]:
        """Config fields -> the values given (None: not set)."""
        return {"seed": self.seed, "num_steps": self.steps, "restarts": self.restarts, "crops": self.crops,
                "image_size": self.image_size, "init_prompt": self.init_prompt, "max_batch": self.max_batch}

    def config(self) -> Config:
        """The preset with the options the user set applied."""
        return config_for(self.preset, self.overrides())

    def load(self, device: Device | None = None) -> Any:
        """The model (see :func:`load_model`), on `device` instead of --device if given."""
        return load_model(self.model, device or self.device, self.dtype, self.autocast, self.compile_model,
                          self.threads, self.preset)


def _model_parameters(preset_default: str | None, preset_help: str | None, init_prompt: bool
                      ) -> list[inspect.Parameter]:
    model_opt = functools.partial(typer.Option, rich_help_panel=MODEL)
    method_opt = functools.partial(typer.Option, rich_help_panel=METHOD)
    declared: list[tuple[str, Any, Any]] = [
        ("model", Annotated[str, model_opt(
            "--model", help="Hugging Face id, local diffusers folder, or 'tiny' (random weights, for tests only).")],
         DEFAULT_MODEL),
        ("device", Annotated[Device, model_opt("--device", help="Where to run.")], Device.auto),
        ("dtype", Annotated[DType, model_opt(
            "--dtype", help="Weights' precision; auto = float32 (CUDA then computes under --autocast).")], DType.auto),
        ("autocast", Annotated[Autocast, model_opt(
            "--autocast", help="Compute in this precision under torch.autocast, with float32 weights, embeddings "
            "and loss; auto = none (float32) for the paper preset on every device, as the seed; for other presets "
            "bfloat16 on CUDA where the GPU supports it, else float16; bfloat16 on CPUs with native bfloat16 "
            "(AVX512-BF16, AMX-BF16, Arm BF16) for full-size models; else none.")], Autocast.auto),
        ("compile_model", Annotated[bool, model_opt(
            "--compile", help="torch.compile the VAE encoder and the UNet's ResNet blocks; the first call at each "
            "batch size compiles (minutes on a CPU).")], False),
        ("max_batch", Annotated[int | None, model_opt(
            "--max-batch", min=1, help="Most samples per UNet call (default: sized to free memory).")], None),
        ("threads", Annotated[int | None, model_opt(
            "--threads", min=1, help="CPU threads torch computes with (default: OMP_NUM_THREADS, else the cores "
            "this process may use by affinity and cgroup quota; 1 for --model tiny).")], None),
        ("preset", Annotated[str | None, method_opt(
            "--preset", help=preset_help or f"Hyper-parameter preset. {PRESET_HELP}.")], preset_default),
        ("seed", Annotated[int | None, method_opt(
            "--seed", help="Seed of every random draw (default: the preset's).")], None),
        ("steps", Annotated[int | None, method_opt(
            "--steps", min=0, help="Fit steps per restart (default: preset's).")], None),
        ("restarts", Annotated[int | None, method_opt(
            "--restarts", min=1, help="Restarts per point (default: preset's).")], None),
        ("crops", Annotated[int | None, method_opt(
            "--crops", min=1, help="Locate crops per image (default: preset's).")], None),
        ("image_size", Annotated[int | None, method_opt(
            "--image-size", help="Side of the square model input in pixels, a multiple of 64 (default: the "
            "model's native resolution: 512 for SD 1.x and 2.x-base, 768 for SD 2.x 768, 64 for tiny).")], None),
    ]
    if init_prompt:
        declared.append(("init_prompt", Annotated[str | None, method_opt(
            "--init-prompt", help="Start embeddings from this prompt's CLIP encoding instead of noise.")], None))
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, annotation, default in declared]


def model_options(*, preset_default: str | None = "paper", preset_help: str | None = None,
                  init_prompt: bool = True) -> Callable[[F], F]:
    """Add the model and method options to a command, grouped in --help (Model, Method), and pass them to it
    as one ``options: ModelOptions`` argument.

    Args:
        preset_default: --preset's default (None: the command decides, e.g. from an embeddings file).
        preset_help: --preset's help, where the command's differs.
        init_prompt: whether the command fits (and so takes --init-prompt).
    """

    def decorate(command: F) -> F:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(command).parameters.values() if p.name != "options"]
        added = _model_parameters(preset_default, preset_help, init_prompt)
        names = [p.name for p in added]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            options = ModelOptions(**{name: kwargs.pop(name) for name in names})
            return command(**kwargs, options=options)

        wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added)
        wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
        return wrapper  # type: ignore[return-value]

    return decorate


OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing output, whole, instead of refusing to run.", rich_help_panel=OUTPUT)]


def precision(device_type: str, dtype: DType, autocast: Autocast, preset: str = "paper",
              full_size: bool = True) -> tuple[Any, Any]:
    """(weights' torch dtype, autocast torch dtype or None) for --dtype, --autocast and --preset on a device type.

    `--autocast auto` is the library's rule (`vidcorr.method.precision.auto_autocast`): float32 for the paper
    preset on every device (the seed's); for the others bfloat16 or float16 on CUDA, and bfloat16 on CPUs with
    native bfloat16 for a full-size model (`full_size`).
    """
    # The model stack loads only for commands that run a model.
    import torch

    from vidcorr.method.precision import auto_autocast

    weights = torch.float32 if dtype is DType.auto else getattr(torch, dtype.value)
    if autocast is Autocast.auto:
        compute = auto_autocast(device_type, preset, weights, full_size)
    else:
        compute = None if autocast is Autocast.none else getattr(torch, autocast.value)
    if compute is not None and weights != torch.float32:
        raise InputError(f"--autocast {autocast.value} needs float32 weights: drop --dtype {dtype.value}")
    return weights, compute


def load_model(model: str, device: Device, dtype: DType, autocast: Autocast = Autocast.auto,
               compile_model: bool = False, threads: int | None = None, preset: str | None = None) -> Any:
    """An LDM from --model/--device/--dtype/--autocast/--compile; 'tiny' is announced loudly.
    torch's CPU thread count is set by vidcorr.threads' policy (--threads first); --preset picks the auto
    precision (None reads as paper)."""
    from vidcorr.method.model import LDM, resolve_device
    from vidcorr.threads import configure_threads

    quiet_model_libraries()
    resolved = resolve_device(device.value)
    torch_dtype, _ = precision(resolved.type, dtype, autocast, preset or "paper")  # a bad pair fails before loading
    if model == "tiny":
        err_console.print("[bold yellow]warning:[/] --model tiny has random weights: it exists for tests and "
                          "smoke runs, and its output means nothing", soft_wrap=True)
        ldm = LDM.tiny(device=resolved, dtype=torch_dtype)
    else:
        with status(f"loading {model} on {resolved}"):
            ldm = LDM.from_pretrained(model, device=resolved, dtype=torch_dtype)
    _, compute = precision(resolved.type, dtype, autocast, preset or "paper", full_size=ldm.is_full_size)
    ldm.set_autocast(compute)
    if autocast is Autocast.auto and compute is not None and resolved.type == "cpu":
        from vidcorr.method.precision import native_bf16_features  # loaded with the model stack above

        err_console.print(f"computing under bfloat16 autocast: this CPU has native bfloat16 "
                          f"({', '.join(native_bf16_features())}); --autocast none computes in float32",
                          soft_wrap=True)
    configure_threads(threads, small_model=not ldm.is_full_size)
    return ldm.compile() if compile_model else ldm


def warn_skipped_steps(skipped: int, total: int) -> None:
    """Say so when a float16 fit skipped steps (a non-finite gradient in a sample); the counts are saved."""
    if skipped:
        err_console.print(f"[bold yellow]warning:[/] {skipped} of {total} fit steps (points x restarts x steps) "
                          "were skipped for a non-finite float16 gradient; each point's count is saved with "
                          "the results (skipped_steps). --autocast bfloat16 or none avoids this.", soft_wrap=True)


def quiet_model_libraries() -> None:
    """The CLI owns the terminal: the model stack's progress, retry and deprecation chatter stays out of it
    (VIDCORR_DEBUG=1 keeps it). Called once the model stack is imported anyway (commands without a model never
    import it)."""
    if os.environ.get("VIDCORR_DEBUG", "") not in ("", "0"):
        return
    import diffusers
    import huggingface_hub
    import transformers

    for module in (diffusers, transformers, huggingface_hub):
        module.utils.logging.set_verbosity_error()


def warn_if_slow(ldm: Any, cfg: Config, num_points: int, num_images: int) -> None:
    """On a CPU with a full-size model, measure and print the expected run time before starting."""
    if ldm.device.type != "cpu" or not ldm.is_full_size:
        return
    from vidcorr.method.estimate import estimate_run

    compiling = " (compiling the model first)" if ldm.compiled else ""
    with status(f"measuring this CPU's speed to estimate the run time{compiling}"):
        est = estimate_run(ldm, cfg, num_points, num_images)
    err_console.print(f"[bold yellow]warning:[/] a full-size model on a CPU: about {format_seconds(est.total_s)} "
                      f"(fit {format_seconds(est.fit_s)}, locate {format_seconds(est.locate_s)}; one UNet "
                      f"forward takes {est.unet_forward_s:.1f} s here). A GPU is hundreds of times faster; "
                      "--preset fast cuts the work.", soft_wrap=True)


format_seconds = format_duration
"""'42 s', '12 min', '3.5 h' (the library's own rule, shared with its plain progress lines)."""


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    if console.is_terminal:
        with console.status(message):
            yield
    else:
        yield


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


def elapsed(start: float) -> str:
    return format_seconds(time.perf_counter() - start)
