"""The weights error's advice: the hub command that is installed, local paths, no CLI flags in the library."""

from importlib import metadata

import pytest

import vidcorr.method.model as model_module
from vidcorr import LDM, ModelLoadError


def test_a_missing_local_folder_is_said_to_be_missing_not_fetched_from_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("./nosuch_model_dir", "../nosuch", str(tmp_path / "gone"), "~/no/such/model", "models/sd/v1/"):
        with pytest.raises(ModelLoadError) as info:
            LDM.from_pretrained(name)
        assert str(info.value) == (f"model folder {name!r} does not exist (a local model is a diffusers folder with "
                                   "unet/ and vae/ subfolders)")


@pytest.mark.parametrize(("name", "local"), [
    ("CompVis/stable-diffusion-v1-4", False), ("runwayml/stable-diffusion-v1-5", False), ("tiny", False),
    ("./m", True), ("../m", True), ("/abs/m", True), ("~/m", True), ("a/b/c", True), ("m/", True), (".", True),
])
def test_what_looks_like_a_path(name, local):
    assert model_module.looks_like_a_path(name) is local


class _Dist:
    def __init__(self, scripts):
        self.entry_points = [metadata.EntryPoint(name, f"huggingface_hub.cli:{name}", "console_scripts")
                             for name in scripts]


@pytest.mark.parametrize(("scripts", "commands"), [
    (["hf", "tiny-agents"], ("hf download", "hf auth login")),
    (["huggingface-cli"], ("huggingface-cli download", "huggingface-cli login")),
])
def test_the_download_command_is_the_one_the_installed_hub_library_ships(monkeypatch, scripts, commands):
    monkeypatch.setattr(metadata, "distribution", lambda name: _Dist(scripts))
    assert model_module.hub_commands() == commands
    message = model_module._explain_load_failure("org/model", OSError("something odd"))
    assert f"`{commands[0]} org/model`" in message


def test_library_messages_name_no_cli_flags():
    for exc in (OSError("something odd"), OSError("401 Client Error: gated repo"), OSError("404 not found")):
        message = model_module._explain_load_failure("org/model", exc)
        assert "--" not in message and "or use a local diffusers folder" in message, message
