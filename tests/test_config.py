import dataclasses

import pytest

from vidcorr import LDM, PRESETS, Config, InputError
from vidcorr.method.plan import prepare


def test_default_config_is_the_seeds_value_for_value():
    # image_size None: the model's native resolution, which on the seed's SD 1.4 is the seed's 512.
    expected = {
        "image_size": None, "layers": (5, 6, 7, 8), "heads": "second_half", "token_index": 1, "num_tokens": 77,
        "num_inference_steps": 50, "fit_timestep_index": -8, "locate_timestep_index": -3, "noise": "uniform",
        "num_steps": 129, "lr": 0.0023755632081200314, "sigma": 27.97853316316864,
        "crop_percent": 93.16549294381423, "crop_margin": 0.15, "flip_prob": 0.0, "restarts": 5,
        "init_prompt": None, "crops": 20, "seed": 0, "max_batch": None, "stop_early": True,
    }
    assert dataclasses.asdict(Config()) == expected
    assert Config() == Config.preset("paper")
    sd14 = LDM.random_architecture("sd14", device="meta")
    assert dataclasses.asdict(prepare(sd14, Config())) == {**expected, "image_size": 512}


def test_an_explicit_image_size_is_kept_whatever_the_model():
    assert Config(image_size=128).at_size(512).image_size == 128
    assert Config().at_size(768).image_size == 768


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_differ_from_paper_only_where_documented(name):
    paper, preset = dataclasses.asdict(Config()), dataclasses.asdict(Config.preset(name))
    changed = {k for k in paper if paper[k] != preset[k]}
    assert changed == set(PRESETS[name])


def test_fast_and_balanced_values():
    assert (Config.preset("fast").restarts, Config.preset("fast").crops) == (1, 4)
    assert (Config.preset("balanced").restarts, Config.preset("balanced").crops) == (2, 8)


def test_overrides_apply_on_top_of_a_preset():
    cfg = Config.preset("fast", seed=7, num_steps=3)
    assert (cfg.restarts, cfg.seed, cfg.num_steps, cfg.crops) == (1, 7, 3, 4)


def test_bad_values_name_the_field_and_the_value():
    with pytest.raises(InputError, match=r"^config noise must be 'uniform', 'gaussian' or 'none', got 'pink'$"):
        Config(noise="pink")
    with pytest.raises(InputError, match=r"^config image_size must be a positive multiple of 64, got 500$"):
        Config(image_size=500)
    with pytest.raises(InputError, match=r"^unknown preset 'quick'; choose one of paper, balanced, fast$"):
        Config.preset("quick")


def test_dict_round_trip():
    cfg = Config(layers=[8, 9], init_prompt="a cat", seed=3)
    assert cfg.layers == (8, 9)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="unknown config fields"):
        Config.from_dict({"warp": 9})


def test_scheduler_timesteps_are_the_seeds(tiny):
    assert tiny.timestep(50, 0) == 980
    assert tiny.timestep(50, -8) == 140
    assert tiny.timestep(50, -3) == 40
