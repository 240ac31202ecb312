"""`--autocast auto`: native bfloat16 detection on CPUs (on a patched feature probe) and the rule built on it.

The probe's answers here are made up, so these tests mean the same on every machine: a CPU "with" bf16
reports avx512_bf16 (Zen 4's flag), one "without" reports AVX2 and AVX-512F only.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vidcorr.method import precision as policy
from vidcorr_cli.app import app
from vidcorr_cli.common import Autocast, DType
from vidcorr_cli.common import precision as cli_precision

WITH_BF16 = frozenset({"sse4_2", "avx2", "avx512_f", "avx512_bf16", "avx512_vnni"})
WITHOUT_BF16 = frozenset({"sse4_2", "avx2", "avx512_f", "avx512_vnni"})

# Two processors of a Zen 4 VM's /proc/cpuinfo (shortened), and an Arm (Neoverse V1) one.
X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme de pse avx2 avx512f avx512dq avx512_bf16 avx512vbmi avx512_vnni
bogomips\t: 5200.00

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme de pse avx2 avx512f avx512dq avx512_bf16 avx512vbmi avx512_vnni
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid sve bf16 i8mm
CPU implementer\t: 0x41
"""
AVX2_CPUINFO = "processor\t: 0\nmodel name\t: AMD EPYC 7B13 (bfloat16 in the name means nothing)\n" \
               "flags\t\t: fpu sse4_2 avx avx2 fma\n"


@pytest.fixture
def cpu_with(monkeypatch):
    """Make the CPU report `features`, and the model stack have oneDNN."""
    def set_features(features: frozenset[str]) -> None:
        monkeypatch.setattr(policy, "cpu_features", lambda: features)
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    return set_features


# --- the probe --------------------------------------------------------------------------------------
def test_cpuinfo_flags_are_read_from_x86_and_arm_lines_never_from_the_model_name():
    assert policy.parse_cpuinfo_flags(X86_CPUINFO) == frozenset(
        {"fpu", "vme", "de", "pse", "avx2", "avx512f", "avx512dq", "avx512_bf16", "avx512vbmi", "avx512_vnni"})
    assert "bf16" in policy.parse_cpuinfo_flags(ARM_CPUINFO) and "sve" in policy.parse_cpuinfo_flags(ARM_CPUINFO)
    assert policy.parse_cpuinfo_flags(AVX2_CPUINFO) == frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})
    assert policy.parse_cpuinfo_flags("processor\t: 0\n") == frozenset()


def test_cpu_features_take_torchs_probe_and_fall_back_to_proc_cpuinfo(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": True, "amx_bf16": False,
                                                                "l2_cache_size": 1048576, "architecture": "x86_64"},
                        raising=False)
    policy.cpu_features.cache_clear()
    try:
        # Booleans that are True only: not the absent feature, not a cache size or a name.
        assert policy.cpu_features() == frozenset({"avx2", "avx512_bf16"})
        assert policy.native_bf16_features() == ("avx512_bf16",)
        # A torch without the probe (before it was added): the kernel's flags.
        monkeypatch.delattr(torch.cpu, "get_capabilities")
        (tmp_path / "cpuinfo").write_text(AVX2_CPUINFO)
        monkeypatch.setattr(policy, "CPUINFO", tmp_path / "cpuinfo")
        policy.cpu_features.cache_clear()
        assert policy.cpu_features() == frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})
        assert policy.native_bf16_features() == ()
        # Neither (not Linux, no probe): no features, so no bfloat16.
        monkeypatch.setattr(policy, "CPUINFO", tmp_path / "absent")
        policy.cpu_features.cache_clear()
        assert policy.cpu_features() == frozenset() and not policy.cpu_has_native_bf16()
    finally:
        policy.cpu_features.cache_clear()


@pytest.mark.parametrize("features, expected", [
    (WITH_BF16, True),
    (WITHOUT_BF16, False),
    (frozenset({"avx2", "amx_tile", "amx_bf16"}), True),        # Sapphire Rapids: AMX
    (frozenset({"neon", "bf16", "i8mm"}), True),                # Arm BF16
    (frozenset({"avx512_fp16", "amx_fp16"}), False),            # float16 units are not bfloat16 ones
])
def test_native_bf16_is_one_of_its_flags(cpu_with, features, expected):
    cpu_with(features)
    assert policy.cpu_has_native_bf16() is expected


def test_native_bf16_needs_onednn(cpu_with, monkeypatch):
    cpu_with(WITH_BF16)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not policy.cpu_has_native_bf16()


# --- the rule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["balanced", "fast"])
def test_auto_uses_bf16_on_a_cpu_that_has_it_for_a_full_size_model(cpu_with, preset):
    cpu_with(WITH_BF16)
    assert policy.auto_autocast("cpu", preset) == torch.bfloat16
    assert cli_precision("cpu", DType.auto, Autocast.auto, preset) == (torch.float32, torch.bfloat16)
    # Not for the tiny test model, not for weights already in low precision, not on MPS.
    assert policy.auto_autocast("cpu", preset, full_size=False) is None
    assert cli_precision("cpu", DType.auto, Autocast.auto, preset, full_size=False) == (torch.float32, None)
    assert cli_precision("cpu", DType.bfloat16, Autocast.auto, preset) == (torch.bfloat16, None)
    assert policy.auto_autocast("mps", preset) is None
    cpu_with(WITHOUT_BF16)
    assert policy.auto_autocast("cpu", preset) is None
    assert cli_precision("cpu", DType.auto, Autocast.auto, preset) == (torch.float32, None)


def test_the_switch_turns_the_cpu_branch_off(cpu_with, monkeypatch):
    cpu_with(WITH_BF16)
    monkeypatch.setattr(policy, "CPU_BF16_AUTOCAST", False)
    assert policy.auto_autocast("cpu", "fast") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert policy.auto_autocast("cuda", "fast") == torch.bfloat16  # CUDA's rule is its own


@pytest.mark.parametrize("features", [WITH_BF16, WITHOUT_BF16])
def test_autocast_given_overrides_the_probe(cpu_with, features):
    cpu_with(features)
    for preset in ("paper", "balanced", "fast"):
        assert cli_precision("cpu", DType.auto, Autocast.none, preset) == (torch.float32, None)
        assert cli_precision("cpu", DType.auto, Autocast.bfloat16, preset) == (torch.float32, torch.bfloat16)
        assert cli_precision("cpu", DType.auto, Autocast.float16, preset) == (torch.float32, torch.float16)


@pytest.mark.parametrize("device, features, cuda_bf16", [
    ("cpu", WITH_BF16, False), ("cpu", WITHOUT_BF16, False),
    ("cuda", WITH_BF16, True), ("cuda", WITHOUT_BF16, False), ("mps", WITH_BF16, False)])
def test_paper_never_autocasts_by_default_on_any_device(cpu_with, monkeypatch, device, features, cuda_bf16):
    cpu_with(features)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    assert policy.auto_autocast(device, "paper") is None
    assert policy.auto_autocast(device, "paper", full_size=False) is None
    assert cli_precision(device, DType.auto, Autocast.auto, "paper") == (torch.float32, None)
    assert cli_precision(device, DType.auto, Autocast.auto) == (torch.float32, None)  # no preset reads as paper
    # The other presets on the same device, for contrast: CUDA always autocasts them.
    if device == "cuda":
        assert policy.auto_autocast(device, "fast") == (torch.bfloat16 if cuda_bf16 else torch.float16)


# --- the command ------------------------------------------------------------------------------------
@pytest.fixture
def pair(tmp_path):
    from conftest import random_image

    Image.fromarray(random_image(48, 80, seed=1)).save(tmp_path / "src.png")
    Image.fromarray(random_image(56, 56, seed=2)).save(tmp_path / "trg.png")
    return tmp_path / "src.png", tmp_path / "trg.png"


@pytest.mark.parametrize("preset, features, autocast, recorded", [
    ("fast", WITH_BF16, "auto", "bfloat16"),
    ("fast", WITHOUT_BF16, "auto", None),
    ("paper", WITH_BF16, "auto", None),
    ("fast", WITH_BF16, "none", None),
    ("paper", WITHOUT_BF16, "bfloat16", "bfloat16"),
])
def test_the_command_applies_the_rule_says_so_and_records_it(cpu_with, monkeypatch, tmp_path, pair, preset,
                                                             features, autocast, recorded):
    from vidcorr.method.model import LDM

    cpu_with(features)
    # The tiny model posing as a full-size one (the rule's CPU branch is for those); the run-time estimate a
    # full-size model prints first is not what this test is about.
    monkeypatch.setattr(LDM, "is_full_size", property(lambda self: True))
    monkeypatch.setattr("vidcorr_cli.match.warn_if_slow", lambda *a, **k: None)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "match", str(pair[0]), str(pair[1]), "--points", "10,20", "-o", str(out), "--model", "tiny",
        "--preset", preset, "--steps", "1", "--restarts", "1", "--crops", "1", "--image-size", "64",
        "--device", "cpu", "--autocast", autocast])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "matches.json").read_text())["autocast"] == recorded
    said = [line for line in result.stderr.splitlines() if line.startswith("computing under bfloat16")]
    assert said == (["computing under bfloat16 autocast: this CPU has native bfloat16 (avx512_bf16); --autocast "
                     "none computes in float32"] if autocast == "auto" and recorded else [])
