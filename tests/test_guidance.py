"""Guidance: w is chosen on validation by its rule, saved with the run, and every later score uses it."""

import json

import pytest
import torch

from plusrl.api import PersonalizedRewardModel
from plusrl.config import ConfigError, load_config
from plusrl.data.pets import PROMPT, load_validation_facts
from plusrl.data.readers import DataError
from plusrl.eval.guidance import (
    GRID,
    Guidance,
    calibrate_run,
    calibrated_weight,
    is_calibrated,
)
from plusrl.eval.runs import evaluate_run
from plusrl.run_dir import RunDir
from plusrl.training.configs import RewardTrainConfig
from plusrl.training.reward import train_reward_model


def test_the_weight_with_the_best_validation_accuracy_the_largest_of_ties():
    flat = {w: 1.0 for w in GRID}
    falls_at_2 = {w: 1.0 if w < 2.0 else 0.5 for w in GRID}
    assert calibrated_weight({"a": flat}) == GRID[-1]
    assert calibrated_weight({"a": flat, "b": falls_at_2}) == 1.75
    # the prior's set loses 2 of 200 pairs at 1.25 while the other wins 3: mean 0.9925 → 0.995
    agreed = dict(zip(GRID, (1.0, 0.99, 0.98, 0.885, 0.505, 0.125, 0.07, 0.01)))
    new = dict(zip(GRID, (0.985, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)))
    assert calibrated_weight({"agreed": agreed, "new": new}) == 1.25
    # within one point of the best (0.995): 1.5 (mean 0.99); 1.75 (0.9425) is not
    assert calibrated_weight({"agreed": agreed, "new": new}, tolerance=0.01) == 1.5
    # a set that only falls keeps w = 1; one that rises late takes the top
    assert calibrated_weight({"a": {w: 1.0 if w == 1.0 else 0.9 for w in GRID}}) == 1.0
    assert calibrated_weight({"a": {w: 0.0 if w < 3.0 else 1.0 for w in GRID}}) == GRID[-1]


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("guided") / "run"
    cfg = load_config(RewardTrainConfig, None, [
        "method=oracle", "data.max_train_records=64", "rm_optim.batch_size=16", "rm_optim.epochs=2", "rm_optim.lr=1e-4",
        "reward_model.max_length=64", "reward_model.similarity_weight=5.0", f"output_dir={out}"])
    return train_reward_model(cfg)


def test_calibration_is_saved_and_every_later_score_uses_it(oracle_run):
    guidance = calibrate_run(oracle_run, ["pets-val@validation"])
    assert set(guidance.population) == {"This user prefers dogs over cats.", "This user prefers cats over dogs."}
    accuracy = {w: guidance.validation["pets-val@validation"][str(w)] for w in GRID}
    assert guidance.weight == calibrated_weight({"pets-val": accuracy})
    saved = json.loads(RunDir(oracle_run).guidance_file.read_text())
    assert saved["weight"] == guidance.weight and saved["checkpoint"] == RunDir(oracle_run).checkpoint().name
    assert is_calibrated(RunDir(oracle_run))
    # evaluation scores with it, and its result file says with which w
    evaluate_run(oracle_run, ["pets-val@validation"])
    evaluated = json.loads((RunDir(oracle_run).eval_dir / "pets-val@validation.json").read_text())
    assert evaluated["guidance_weight"] == guidance.weight
    assert evaluated["accuracy"] == pytest.approx(accuracy[guidance.weight])
    # a tolerance takes the largest w within it of the best, and is saved beside the evidence
    tolerant = calibrate_run(oracle_run, ["pets-val@validation"], tolerance=0.05)
    assert tolerant.weight == calibrated_weight({"pets-val": accuracy}, 0.05) >= guidance.weight
    assert json.loads(RunDir(oracle_run).guidance_file.read_text())["tolerance"] == 0.05
    with pytest.raises(ConfigError, match="fraction of pairs"):
        calibrate_run(oracle_run, ["pets-val@validation"], tolerance=2.0)

    # with w = 2 saved, the run's reward model scores r̄ + 2·(r − r̄), r̄ over the two training texts
    Guidance(2.0, guidance.population, {}).save(RunDir(oracle_run).guidance_file)
    facts = load_validation_facts()
    # a response repeated under another user's text: r̄ is scored once per distinct response
    responses = [facts["dogs"][0], facts["cats"][0], facts["birds"][0], facts["dogs"][0]]
    texts = ["This user prefers hamsters over cats."] * 3 + ["This user prefers cats over dogs."]
    prompts = [PROMPT] * 4
    guided = PersonalizedRewardModel.from_pretrained(oracle_run, device="cpu").model
    plain = RunDir(oracle_run).reward_model()
    plain.use_guidance(1.0, [])
    with torch.no_grad():
        own = plain.score(texts, prompts, responses)
        mean = torch.stack([plain.score([t] * 4, prompts, responses) for t in guidance.population]).mean(0)
        assert torch.allclose(guided.score(texts, prompts, responses), mean + 2 * (own - mean), atol=1e-5)
        # a reward with no conditioning text has no user part to weigh
        assert torch.allclose(guided.score(None, prompts, responses), plain.score(None, prompts, responses))


def test_a_broken_guidance_file_is_named(tmp_path):
    bad = tmp_path / "guidance.json"
    bad.write_text('{"weight": "much"}')
    with pytest.raises(DataError, match="not a guidance file"):
        Guidance.load(bad)
    bad.write_text(json.dumps({"weight": -1.0, "population": [], "validation": {}}))
    with pytest.raises(DataError, match="positive number"):
        Guidance.load(bad)


def test_methods_without_a_conditioning_text_cannot_be_calibrated(tmp_path):
    cfg = load_config(RewardTrainConfig, None, ["method=btl", "data.max_train_records=16", "rm_optim.batch_size=16",
                                                "reward_model.max_length=32", f"output_dir={tmp_path / 'btl'}"])
    with pytest.raises(ConfigError, match="reads none"):
        calibrate_run(train_reward_model(cfg), ["pets-val@validation"])
