"""The paper's model family, guarded without a download: a tiny random Qwen2 (grouped-query
attention, tied embeddings, the ChatML template of the embedded SmolLM2 tokenizer, which Qwen2.5
shares) as the reward-model backbone of every method and as the summarizer of PLUS, through
train → eval → export → load. A decoder reward model pools its last token, as the PLUS authors'
OpenRLHF reward models do."""

import pytest
import torch

from plusrl import PersonalizedRewardModel, Summarizer, export_run
from plusrl.data.readers import DataError
from plusrl.eval.runs import evaluate_run
from plusrl.methods import METHODS, method_config, train
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.run_dir import RunDir
from plusrl.training.precision import resolve_precision

PROMPT = "Please talk about one kind of pets."
RESPONSES = ["Dogs greet their owners at the door.", "Cats sleep most of the day."]
TINY = ["data.max_train_records=16", "data.max_eval_records=4", "data.eval_datasets=[pets]", "report_to=none",
        "reward_model.max_length=64"]
SHORT = {"reward": ["rm_optim.batch_size=8", "reward_model.latent_hidden=16"],
         "plus": ["iterations=2", "rollout_batch_size=4", "ppo.advantage_estimator=rloo", "ppo.group_size=2",
                  "ppo.minibatch_size=8", "rm_optim.batch_size=8", "summarizer.max_summary_tokens=6",
                  "summarizer.lora_rank=4", "data.calibration_datasets=[]"]}


def test_a_decoder_reward_model_pools_the_last_real_token(tiny_qwen2):
    model = RewardModel(RewardModelConfig(backbone=tiny_qwen2, max_length=64)).eval()
    assert model.pooling == "last" and model.backbone.config.model_type == "qwen2"
    with torch.no_grad():
        alone = model(model.encode(["I love dogs."], [PROMPT], RESPONSES[:1]))
        padded = model(model.encode(["I love dogs."] * 2, [PROMPT] * 2, [RESPONSES[0], RESPONSES[1] * 5]))
    torch.testing.assert_close(alone[0], padded[0], rtol=1e-4, atol=1e-5)  # padding does not move a reward


def test_activation_checkpointing_recomputes_the_same_rewards_and_gradients(tiny_qwen2):
    def margin_and_grads(checkpointing: bool):
        torch.manual_seed(0)
        config = RewardModelConfig(backbone=tiny_qwen2, max_length=64, lora_rank=4, activation_checkpointing=checkpointing)
        model = RewardModel(config).train()
        assert model.backbone.is_activation_checkpointing == checkpointing
        rewards = model(model.encode(["I love dogs."] * 2, [PROMPT] * 2, RESPONSES))
        (rewards[0] - rewards[1]).sum().backward()
        return rewards.detach(), [p.grad for p in model.parameters() if p.requires_grad]

    plain, checkpointed = margin_and_grads(False), margin_and_grads(True)
    torch.testing.assert_close(checkpointed[0], plain[0])
    assert len(checkpointed[1]) == len(plain[1]) > 2  # LoRA adapters and the head
    for with_recompute, without in zip(checkpointed[1], plain[1], strict=True):
        torch.testing.assert_close(with_recompute, without)


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m != "plus-static-rm"])
def test_every_method_trains_evaluates_exports_and_loads_on_qwen2(method, tiny_qwen2, tmp_path):
    spec = METHODS[method]
    overrides = [f"method={method}", f"output_dir={tmp_path / 'run'}", f"reward_model.backbone={tiny_qwen2}",
                 *TINY, *SHORT[spec.trainer]]
    if spec.has_summarizer:
        overrides.append(f"summarizer.model={tiny_qwen2}")
    run_dir = train(method_config(None, overrides))
    if spec.has_summarizer:  # summaries are written in the precision the run trained in, where it is fast here
        trained_bf16 = RunDir(run_dir).config().precision == "bf16"
        fast_here = resolve_precision("auto", torch.device("cpu")).name == "bf16"
        assert RunDir(run_dir).summarizer().autocast_dtype == (torch.bfloat16 if trained_bf16 and fast_here else None)
    (result,) = evaluate_run(run_dir)
    assert result["n_pairs"] == 4 and 0 <= result["accuracy"] <= 1

    exported = export_run(run_dir, tmp_path / "export")
    reward_model = PersonalizedRewardModel.from_pretrained(exported, device="cpu")
    summary = "I love dogs." if spec.conditioning != "none" else None
    if spec.conditioning == "latent":  # VPL reads the user's past pairs, which a summary is not
        with pytest.raises(DataError, match="VPL"):
            reward_model.score(summary, PROMPT, RESPONSES)
        return
    scores = reward_model.score(summary, PROMPT, RESPONSES)
    assert len(scores) == 2 and all(map(torch.isfinite, torch.tensor(scores)))
    if spec.has_summarizer:
        context = [{"kind": "pair", "prompt": PROMPT, "chosen": RESPONSES[0], "rejected": RESPONSES[1]}]
        (summary,) = Summarizer.from_pretrained(exported, device="cpu").summarize([context])
        assert isinstance(summary, str)
