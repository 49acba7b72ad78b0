"""Recipes load into typed dataclasses; CLI overrides win; mistakes are named."""

import pytest

from plusrl.config import ConfigError, load_config, to_yaml
from plusrl.training.reward import RewardTrainConfig


def test_recipe_then_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: oracle\noptim:\n  lr: 0.001\n  batch_size: 8\nmodel:\n  backbone: minilm-l6\n")
    cfg = load_config(RewardTrainConfig, recipe, ["optim.lr=3e-4", "data.eval_datasets=[pets, pets-ood]", "optim.epochs=2"])
    assert cfg.method == "oracle"
    assert cfg.optim.lr == 3e-4 and cfg.optim.batch_size == 8 and cfg.optim.epochs == 2
    assert cfg.data.eval_datasets == ["pets", "pets-ood"]
    assert cfg.optim.warmup_ratio == 0.03  # untouched defaults stay
    assert load_config(RewardTrainConfig, None, []) == RewardTrainConfig()
    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(cfg))
    assert load_config(RewardTrainConfig, again) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown key(s) ['lrr']"),
        ("optim.batch_size=big", "config.optim.batch_size: expected int, got 'big'"),
        ("optim.lr", "must look like key.subkey=value"),
        ("seed=true", "config.seed: expected int, got True"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(RewardTrainConfig, None, [override])
    assert message in str(err.value)


def test_missing_recipe(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(RewardTrainConfig, tmp_path / "none.yaml")
