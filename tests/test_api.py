"""The public API and `plusrl export`: what other code sees of a trained run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import plusrl
from plusrl import PersonalizedRewardModel, Summarizer, export_run
from plusrl.config import load_config
from plusrl.data.prompts import summary_conditioning
from plusrl.data.readers import DataError
from plusrl.eval.accuracy import score_responses
from plusrl.eval.runs import evaluate_run
from plusrl.run_dir import RunDir
from plusrl.training.configs import PlusConfig, RewardTrainConfig
from plusrl.training.plus import train_plus
from plusrl.training.reward import train_reward_model

PROMPT = "Please talk about one kind of pets."
RESPONSES = ["Dogs greet their owners at the door.", "Cats sleep most of the day.", "Rabbits binky when happy."]
CONTEXT = [{"kind": "pair", "prompt": PROMPT, "chosen": "Dogs can learn a hundred words.",
            "rejected": "Cats purr when content."}]


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    cfg = load_config(RewardTrainConfig, None, [
        "method=oracle", "data.max_train_records=32", "rm_optim.batch_size=16", "reward_model.max_length=64",
        "reward_model.similarity_weight=5.0", "data.max_eval_records=8", "report_to=none",
        f"output_dir={tmp_path_factory.mktemp('runs') / 'oracle'}"])
    run_dir = train_reward_model(cfg)
    evaluate_run(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def plus_run(tmp_path_factory):
    """A tiny trained and evaluated PLUS run (slow tests only: ~1 min)."""
    tmp_path = tmp_path_factory.mktemp("plus")
    cfg = load_config(PlusConfig, None, [
        "iterations=2", "rollout_batch_size=4", "ppo.advantage_estimator=rloo", "ppo.group_size=2", "ppo.kl_coef=0",
        "ppo.minibatch_size=8", "ppo.actor_lr=1e-3", "rm_optim.batch_size=8", "summarizer.max_summary_tokens=8",
        "summarizer.lora_rank=4", "reward_model.max_length=64", "data.max_eval_records=4", f"output_dir={tmp_path / 'run'}"])
    run_dir = train_plus(cfg)
    evaluate_run(run_dir)
    return run_dir


def test_import_plusrl_is_light_and_names_its_api():
    code = "import sys, plusrl; assert 'torch' not in sys.modules, 'torch loaded'; print(plusrl.__all__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "PersonalizedRewardModel" in out and "Summarizer" in out
    with pytest.raises(AttributeError):
        plusrl.NoSuchThing  # noqa: B018


def test_the_reward_model_scores_as_the_run_does_from_the_run_and_from_an_export(oracle_run, tmp_path):
    expected = score_responses(RunDir(oracle_run).reward_model(), [summary_conditioning("I love dogs.")] * 3,
                               [PROMPT] * 3, RESPONSES).tolist()
    assert not (oracle_run / "tb").exists() and (oracle_run / "metrics.jsonl").is_file()  # report_to=none
    from_run = PersonalizedRewardModel.from_pretrained(oracle_run)
    assert from_run.score("I love dogs.", PROMPT, RESPONSES) == pytest.approx(expected, abs=1e-5)
    assert from_run.score("I love dogs.", PROMPT, []) == []
    without = from_run.score(None, PROMPT, RESPONSES)
    assert len(without) == 3 and without != pytest.approx(expected, abs=1e-3)  # the summary matters

    exported = export_run(oracle_run, tmp_path / "export")
    assert {p.name for p in exported.iterdir()} == {"README.md", "reward_model"}  # no summarizer to export
    card = (exported / "README.md").read_text()
    assert "# plusrl oracle" in card and "| pets | " in card and "edit_following" in card
    assert "similarity_weight: 5.0" in card
    reloaded = PersonalizedRewardModel.from_pretrained(exported, device="cpu")
    assert reloaded.score("I love dogs.", PROMPT, RESPONSES) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(FileExistsError):
        export_run(oracle_run, exported)


def test_a_folder_without_a_summarizer_and_a_bad_context_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint with a summarizer"):
        Summarizer.from_pretrained(tmp_path)
    from plusrl.data.readers import parse_user_context

    with pytest.raises(DataError, match=r"contexts\[0\]"):
        parse_user_context({"context": []}, "contexts[0]")


@pytest.mark.slow
def test_an_exported_plus_run_loads_in_a_fresh_process_with_peft_and_transformers_alone(plus_run, tmp_path):
    run_dir = plus_run
    summarizer = Summarizer.from_pretrained(run_dir)
    summary = summarizer.summarize([CONTEXT])[0]
    scores = PersonalizedRewardModel.from_pretrained(run_dir).score(summary, PROMPT, RESPONSES)
    restated = summarizer.restate(["I can't stand cats, but I adore dogs.", "Less dogs, more cats."])
    assert len(restated) == 2 and all(text.strip() for text in restated)
    with pytest.raises(DataError, match=r"statements\[1\]"):
        summarizer.restate(["I like dogs.", " "])

    out = export_run(run_dir, tmp_path / "export", with_summaries=True)
    adapter_config = json.loads((out / "summarizer" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "base_model" and (out / "base_model" / "config.json").is_file()
    assert json.loads((out / "summaries.json").read_text())["pets"]  # held-out summaries by user

    # A fresh process with PEFT and transformers only: the adapter gives the same greedy summary
    # (plusrl's prompt text is rebuilt from the recorded template, no plusrl model code runs).
    from plusrl.data.prompts import context_text, summarizer_prompt
    from plusrl.data.readers import parse_user_context

    prompt = summarizer_prompt(context_text(parse_user_context(CONTEXT), "pets"), "pets")
    script = f"""
import json, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base = AutoModelForCausalLM.from_pretrained({str(out / "base_model")!r})
model = PeftModel.from_pretrained(base, {str(out / "summarizer")!r}).eval()
tok = AutoTokenizer.from_pretrained({str(out / "summarizer")!r})
ids = tok.apply_chat_template([{{"role": "user", "content": {prompt!r}}}], add_generation_prompt=True,
                              return_tensors="pt", return_dict=True)
with torch.no_grad():
    new = model.generate(**ids, max_new_tokens=8, do_sample=False)[0, ids["input_ids"].shape[1]:]
print(json.dumps(tok.decode(new, skip_special_tokens=True)))
"""
    greedy = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                       check=True).stdout.strip().splitlines()[-1])
    assert greedy.strip().removeprefix("##Summary").strip(" :\n") in summary or summary in greedy
    # and the public API, in a fresh process, from the export alone
    api = f"""
import json
from plusrl import PersonalizedRewardModel, Summarizer
s = Summarizer.from_pretrained({str(out)!r}).summarize([{CONTEXT!r}])[0]
print(json.dumps([s, PersonalizedRewardModel.from_pretrained({str(out)!r}).score(s, {PROMPT!r}, {RESPONSES!r})]))
"""
    fresh_summary, fresh_scores = json.loads(subprocess.run([sys.executable, "-c", api], capture_output=True,
                                                            text=True, check=True).stdout.strip().splitlines()[-1])
    assert fresh_summary == summary
    assert torch.allclose(torch.tensor(fresh_scores), torch.tensor(scores), atol=1e-4)


def test_the_trl_reward_function_scores_each_completion_under_its_rows_user(oracle_run):
    from plusrl.integrations.trl import PersonalizedReward
    from plusrl.models.summarizer import Summarizer as SummarizerModel
    from plusrl.models.summarizer import SummarizerConfig

    reward_model = PersonalizedRewardModel.from_pretrained(oracle_run)
    writer = Summarizer(SummarizerModel(SummarizerConfig(max_summary_tokens=4, lora_rank=0)), prompts="pets")
    reward = PersonalizedReward(reward_model, summarizer=writer)
    assert reward.__name__ == "plusrl_personalized_reward"  # TRL names its logged columns by it
    summaries = ["I love dogs.", "I love cats.", "I love dogs."]
    got = reward(prompts=[PROMPT] * 3, completions=RESPONSES, summary=summaries, trainer_state=None)
    expected = [reward_model.score(s, PROMPT, [r])[0] for s, r in zip(summaries, RESPONSES)]
    assert got == pytest.approx(expected, abs=1e-5)

    conversational = reward(prompts=[[{"role": "user", "content": PROMPT}]] * 3,
                            completions=[[{"role": "assistant", "content": r}] for r in RESPONSES], summary=summaries)
    assert conversational == pytest.approx(expected, abs=1e-5)

    calls = []
    summarize = writer.summarize
    writer.summarize = lambda contexts, **kw: calls.append(len(contexts)) or summarize(contexts, **kw)
    by_context = reward(prompts=[PROMPT] * 3, completions=RESPONSES, context=[CONTEXT, CONTEXT, CONTEXT[:1]])
    again = reward(prompts=[PROMPT] * 3, completions=RESPONSES, context=[CONTEXT] * 3)
    assert calls == [1] and len(by_context) == 3 and again == by_context  # one distinct context, summarized once
    with pytest.raises(KeyError, match="'summary' or a 'context' column"):
        reward(prompts=[PROMPT], completions=RESPONSES[:1])

    # the policy's prompt holds more than the request: the reward model reads the request column
    contrast = PersonalizedReward(reward_model, request_column="request", contrast_summaries=["I love dogs.", "I love cats."])
    margins = contrast(prompts=["(the summary) " + PROMPT] * 3, completions=RESPONSES, summary=summaries,
                       request=[PROMPT] * 3)
    other = {"I love dogs.": "I love cats.", "I love cats.": "I love dogs."}
    assert margins == pytest.approx([reward_model.score(s, PROMPT, [r])[0] - reward_model.score(other[s], PROMPT, [r])[0]
                                     for s, r in zip(summaries, RESPONSES)], abs=1e-5)
    with pytest.raises(KeyError, match="request_column 'request'"):
        contrast(prompts=[PROMPT], completions=RESPONSES[:1], summary=summaries[:1])


def test_personalization_margin_subtracts_the_other_users_mean_reward():
    from plusrl.integrations.trl import personalization_margin

    # two completions; own rewards 3 and 1; two other users score them (1, 2) and (3, 0):
    # 3 − (1 + 3)/2 = 1, 1 − (2 + 0)/2 = 0
    assert personalization_margin([3.0, 1.0], [[1.0, 2.0], [3.0, 0.0]]) == [1.0, 0.0]
    assert personalization_margin([3.0, 1.0], []) == [3.0, 1.0]


@pytest.mark.slow
def test_the_trl_grpo_example_trains_a_policy_two_steps_on_the_runs_reward(plus_run, tmp_path):
    # its own process: TRL's trainer sets accelerate's process-wide state, which later trainers must set anew
    example = Path(__file__).resolve().parents[1] / "examples" / "trl_grpo_pets.py"
    subprocess.run([sys.executable, str(example), "--run", str(plus_run), "--summaries", "run", "--steps", "2",
                    "--completion-tokens", "8", "--eval-samples", "1", "--out", str(tmp_path / "grpo")],
                   check=True, capture_output=True)
    result = json.loads((tmp_path / "grpo" / "result.json").read_text())
    assert set(result["summaries"]) == {"dogs", "cats"} and all(result["summaries"].values())
    assert result["summary_source"] == "run"
    assert all(0.0 <= result["preferred_share_after"][d] <= 1.0 for d in ("greedy", "sampled"))
    assert len(result["answers_after"]) == 16  # 2 users × 4 held-out prompts × (greedy + 1 sample)
    assert len(result["mean_reward_last_steps"]) >= 1
