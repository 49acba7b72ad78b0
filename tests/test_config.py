"""Recipes load into typed dataclasses; CLI overrides win; mistakes are named."""

import importlib.util
from pathlib import Path

import pytest

from plusrl.config import ConfigError, load_config, to_yaml
from plusrl.methods import method_config
from plusrl.training.configs import PlusConfig, RewardTrainConfig


def test_recipe_then_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: oracle\nrm_optim:\n  lr: 0.001\n  batch_size: 8\nreward_model:\n  backbone: minilm-l6\n")
    cfg = load_config(RewardTrainConfig, recipe, ["rm_optim.lr=3e-4", "data.eval_datasets=[pets, pets-ood]", "rm_optim.epochs=2"])
    assert cfg.method == "oracle"
    assert cfg.rm_optim.lr == 3e-4 and cfg.rm_optim.batch_size == 8 and cfg.rm_optim.epochs == 2
    assert cfg.data.eval_datasets == ["pets", "pets-ood"]
    assert cfg.rm_optim.warmup_ratio == 0.03  # untouched defaults stay
    assert load_config(RewardTrainConfig, None, []) == RewardTrainConfig()
    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(cfg))
    assert load_config(RewardTrainConfig, again) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("rm_optim.lrr=1", "unknown key(s) ['lrr']"),
        ("rm_optim.batch_size=big", "config.rm_optim.batch_size: expected int, got 'big'"),
        ("rm_optim.lr", "must look like key.subkey=value"),
        ("seed=true", "config.seed: expected int, got True"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(RewardTrainConfig, None, [override])
    assert message in str(err.value)


def test_a_recipe_builds_on_another_section_by_section(tmp_path):
    (tmp_path / "base.yaml").write_text("method: plus\niterations: 16\nppo:\n  kl_coef: 0.0\n  group_size: 4\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nppo:\n  kl_coef: 0.001\nreading_warmup:\n  steps: 5\n")
    cfg = method_config(tmp_path / "child.yaml", ["iterations=3"])
    assert isinstance(cfg, PlusConfig)  # the method comes from the base
    assert (cfg.iterations, cfg.ppo.kl_coef, cfg.ppo.group_size, cfg.reading_warmup.steps) == (3, 0.001, 4, 5)
    (tmp_path / "base.yaml").write_text("base: child.yaml\n")
    with pytest.raises(ConfigError, match="lead back to itself"):
        load_config(PlusConfig, tmp_path / "child.yaml")


def test_missing_recipe(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(RewardTrainConfig, tmp_path / "none.yaml")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["method=plus", "ppo.advantage_estimator=rlooo"], "config.ppo.advantage_estimator: 'rlooo' is not one of "
                                                           "'gae', 'rloo', 'grpo'"),
        (["method=plus", "ppo.advantage_estimator=rloo", "ppo.group_size=1"], "rloo needs group_size ≥ 2"),
        (["method=plus-static-rm"], "plus-static-rm keeps the reward model static: give reward_model_init"),
        (["method=plus", "data.context_type=pair"], "'pair' is not one of 'pairs', 'guideline', 'conversation'"),
        (["method=oracle", "precision=fp16"], "config.precision: 'fp16' is not one of 'auto', 'bf16', 'fp32'"),
        (["method=oracle", "rm_optim.batch_size=0"], "batch_size, epochs ≥ 1"),
        (["method=oracle", "reward_model.pooling=max"], "pooling must be auto, mean or last"),
        (["method=plsu"], "unknown method 'plsu'; choose from btl, dpl"),
        (["method=vpl", "latent_noise_scale=-1"], "latent_noise_scale must be >= 0"),
        (["method=plus", "summarizer.copy_block_tokens=1"], "copy_block_tokens must be 0 (off) or at least 2"),
        (["method=plus", "iterations=4", "freeze_summarizer_iterations=4"],
         "freeze_summarizer_iterations must be in [0, iterations=4)"),
    ],
)
def test_settings_are_checked_when_loaded_before_any_model(overrides, message):
    with pytest.raises(ConfigError) as err:
        method_config(None, overrides)
    assert message in str(err.value)


def test_the_method_picks_the_config_class_and_evaluation_defaults_to_the_training_data(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("method: plus\ndata:\n  dataset: my-data\n")
    plus = method_config(recipe, [])
    assert isinstance(plus, PlusConfig) and plus.data.evaluated == ["my-data"]
    assert plus.data.prompts == "generic" and method_config(recipe, ["data.prompt_family=pets"]).data.prompts == "pets"
    assert method_config(recipe, ["data.eval_datasets=[]"]).data.evaluated == []
    oracle = method_config(recipe, ["method=oracle", "data.eval_datasets=[pets-ood]"])  # the last method= wins
    assert isinstance(oracle, RewardTrainConfig) and oracle.data.evaluated == ["pets-ood"]
    assert oracle.data.prompts == "generic"


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_tracker_that_is_not_installed_fails_when_the_config_loads():
    with pytest.raises(ConfigError, match="report_to=wandb needs the wandb package"):
        method_config(None, ["method=oracle", "report_to=wandb"])


def test_a_plus_run_saved_before_the_registry_still_loads(tmp_path):
    from plusrl.run_dir import RunDir

    old = PlusConfig()
    text = to_yaml(old).replace("method: plus\n", "method: plus-untrained\ntrain_summarizer: false\n"
                                "train_reward_model: true\nrm_epochs: 2\nrm_minibatch_size: 8\nlog_every: 1\n")
    (tmp_path / "config.yaml").write_text(text)
    cfg = RunDir(tmp_path).config()
    assert cfg.method == "plus-untrained" and (cfg.rm_optim.batch_size, cfg.rm_optim.epochs) == (8, 2)


def test_every_config_field_is_documented_and_shown(capsys):
    """`plusrl config show` prints each field with the text under its line: none may lack one."""
    import dataclasses

    from plusrl.cli import main
    from plusrl.config import field_docs

    def undocumented(cls) -> list[str]:
        docs, missing = field_docs(cls), []
        for f in dataclasses.fields(cls):
            missing += [] if f.name in docs else [f"{cls.__name__}.{f.name}"]
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            missing += undocumented(type(default)) if dataclasses.is_dataclass(default) else []
        return missing

    assert undocumented(PlusConfig) == [] and undocumented(RewardTrainConfig) == []
    assert main(["config", "show", "plus", "--config", "recipes/pets/plus.yaml", "ppo.kl_coef=0.01"]) == 0
    shown = capsys.readouterr().out
    assert "ppo.kl_coef = 0.01   (default 0.001)" in shown and "summarizer.stop_at_sentence_end = True" in shown
    assert "β of the k1 KL penalty" in shown


@pytest.mark.parametrize("recipe", sorted(p for p in Path("plusrl/recipes").glob("*/*.yaml") if p.parent.name != "accelerate"),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_recipe_loads_as_its_methods_config(recipe):
    from plusrl.methods import method_spec

    overrides = ["reward_model_init=runs/any"] if "static" in recipe.name else []  # its only required key
    config = method_config(recipe, overrides)
    assert type(config) is method_spec(config.method).config_class()
