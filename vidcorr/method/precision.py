"""Which precision a run computes in when the user leaves it to vidcorr (`--autocast auto`).

The rule (`auto_autocast`), for float32 weights; weights already in float16 or bfloat16 never autocast:

- the `paper` preset computes in float32 on every device, as the seed did; autocast is opt-in for it;
- the presets that already change the math (`balanced`, `fast`) compute under autocast where it pays:
  - CUDA: bfloat16 where the GPU supports it, else float16;
  - CPU: bfloat16 where the CPU computes bfloat16 natively (`cpu_has_native_bf16`) and the model is
    full size; float32 otherwise. On Zen 4 (AVX512-BF16) one SD 1.x UNet forward at 512 took 0.64x
    float32's time under bfloat16 autocast (issue 24); the tiny test model's operations are too small
    for a cast to pay, and keeping it float32 keeps its numbers the same on every machine.
    `CPU_BF16_AUTOCAST` switches this branch off where the benchmark (`benchmarks/speed.py --variants
    fp32,bf16`) shows that a whole fit step does not gain;
  - MPS: float32.

Native bfloat16 on a CPU means an instruction that multiplies bfloat16 values: x86 AVX512-BF16 (AMD Zen 4
and later, Intel Cooper Lake) or AMX-BF16 (Intel Sapphire Rapids and later), Arm's BF16 extension
(Neoverse V1/N2, Graviton 3, Apple M2). It is read from the CPU's feature flags (`cpu_features`): torch's
own probe (`torch.cpu.get_capabilities`, CPUID through the cpuinfo library) where this torch has it, else
the kernel's `/proc/cpuinfo` flags (Linux). The CPU's model name is never consulted. bfloat16 convolutions
run through oneDNN, so a torch built without it never autocasts on a CPU.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

CPU_BF16_AUTOCAST = True
"""Whether `--autocast auto` uses bfloat16 for the `balanced` and `fast` presets on CPUs with native
bfloat16. Set from `benchmarks/speed.py --arch sd14 --variants fp32,bf16` (a fit step and a locate crop of
the full-size model, float32 against bfloat16 autocast, side by side)."""

NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16")
"""Feature flags that mean the CPU multiplies bfloat16 natively: x86 AVX512-BF16 and AMX-BF16 (the same
names in torch's probe and in /proc/cpuinfo), Arm FEAT_BF16 (`bf16` in both)."""

CPUINFO = Path("/proc/cpuinfo")


def parse_cpuinfo_flags(text: str) -> frozenset[str]:
    """The feature flags of the first processor in /proc/cpuinfo `text`: x86's ``flags`` line or Arm's
    ``Features`` line (space-separated names, lower case); empty if neither is there."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.lower().split())
    return frozenset()


def _torch_capabilities() -> frozenset[str] | None:
    """The names torch's CPU probe reports as present, or None where this torch has no probe (older releases)."""
    probe = getattr(torch.cpu, "get_capabilities", None)
    if probe is None:
        return None
    # Booleans are features; integers (cache sizes, core counts, vector lengths) are not.
    return frozenset(name for name, value in probe().items() if value is True)


def _cpuinfo_flags() -> frozenset[str]:
    try:
        return parse_cpuinfo_flags(CPUINFO.read_text())
    except OSError:  # not Linux, or /proc not mounted
        return frozenset()


@functools.cache
def cpu_features() -> frozenset[str]:
    """This CPU's feature flags: torch's probe where it has one, else /proc/cpuinfo (empty elsewhere)."""
    found = _torch_capabilities()
    return found if found is not None else _cpuinfo_flags()


def native_bf16_features() -> tuple[str, ...]:
    """Which of `NATIVE_BF16_FEATURES` this CPU reports (empty: no native bfloat16)."""
    features = cpu_features()
    return tuple(name for name in NATIVE_BF16_FEATURES if name in features)


def cpu_has_native_bf16() -> bool:
    """True if this CPU multiplies bfloat16 natively and torch can use it (oneDNN is built in)."""
    return bool(native_bf16_features()) and torch.backends.mkldnn.is_available()


def auto_autocast(device_type: str, preset: str, weights: torch.dtype = torch.float32,
                  full_size: bool = True) -> torch.dtype | None:
    """The autocast dtype `--autocast auto` picks (None: compute in the weights' own dtype); see the module
    docstring for the rule.

    Args:
        device_type: ``cpu``, ``cuda`` or ``mps`` (a torch.device's type).
        preset: ``paper``, ``balanced`` or ``fast``.
        weights: the weights' dtype; autocast needs float32 weights.
        full_size: whether the model is SD-sized (`LDM.is_full_size`); the CPU branch needs it.
    """
    if preset == "paper" or weights != torch.float32:
        return None
    if device_type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device_type == "cpu" and CPU_BF16_AUTOCAST and full_size and cpu_has_native_bf16():
        return torch.bfloat16
    return None
