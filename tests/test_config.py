import pytest

from adapttoken_plugin import AdaptTokenConfig, ConfigError


def test_defaults_round_trip():
    cfg = AdaptTokenConfig()
    assert AdaptTokenConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.selector == "adapttoken" and cfg.tau == 2.0 and cfg.position_rule == "original"


def test_strings_are_coerced_like_cli_and_harness_arguments():
    cfg = AdaptTokenConfig.from_dict({
        "budget": "4096", "tau": "1.5", "dedup": "false", "scoring_layer": "None", "adapttoken_theta": "0.3",
        "max_frames": "-1.0".replace("-", ""),  # lmms-eval turns integers into floats: "1.0"
        "frames-per-group": "32",
    })
    assert cfg.budget == 4096 and isinstance(cfg.budget, int)
    assert cfg.tau == 1.5 and cfg.dedup is False and cfg.scoring_layer is None and cfg.theta == 0.3
    assert cfg.max_frames == 1 and cfg.frames_per_group == 32


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="'bugdet'"):
        AdaptTokenConfig.from_dict({"bugdet": 10})


@pytest.mark.parametrize("key,value", [
    ("budget", 0), ("budget", -5), ("budget", "1.5"), ("tau", 0), ("theta", -1), ("overselect", 0.9),
    ("selector", "nope"), ("position_rule", "gapped"), ("entropy_top_fraction", 0), ("fps", "fast"),
    ("dedup", "maybe"), ("budget", None), ("overselect", 1e308), ("dedup_window", 10**30), ("budget", 2**63),
    ("tau", float("nan")), ("score_reduce", "median"), ("frame_cache", "ram"),
])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        AdaptTokenConfig.from_dict({key: value})


def test_a_config_cannot_be_changed_after_validation():
    """Assigning a setting would skip the checks (budget -5, tau 0 reached the selectors): it raises, and
    `replace` is the way to change one."""
    cfg = AdaptTokenConfig(budget=10)
    for key, value in (("budget", -5), ("tau", 0), ("budget", 20)):
        with pytest.raises(ConfigError, match=rf"replace\({key}="):
            setattr(cfg, key, value)
    with pytest.raises(ConfigError):
        del cfg.tau
    assert cfg == AdaptTokenConfig(budget=10) and cfg.replace(budget=20).budget == 20


def test_replace_validates():
    cfg = AdaptTokenConfig(budget=10)
    assert cfg.replace(budget=20).budget == 20
    with pytest.raises(ConfigError, match="budget"):
        cfg.replace(budget=0)


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, adapttoken_plugin; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
