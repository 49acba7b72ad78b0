"""PLUS co-training end to end with the embedded SmolLM2-135M summarizer, on CPU."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from plusrl.config import load_config
from plusrl.data.prompts import summarizer_prompt
from plusrl.data.registry import load_split
from plusrl.data.schema import PreferencePair
from plusrl.eval.readability import readability_rate
from plusrl.eval.readability import edit_cases
from plusrl.eval.runs import evaluate_run
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.models.summarizer import Summarizer, SummarizerConfig, _CopiedContinuations, selected_logprobs
from plusrl.training.checkpoint import latest_checkpoint
from plusrl.training.configs import PlusConfig
from plusrl.training.losses import bradley_terry_loss
from plusrl.training.plus import (
    build,
    notes_warmup,
    reward_passes,
    reward_update,
    score_distinct,
    score_pairs,
    train_plus,
)

TINY_PLUS = [
    "iterations=2",
    "rollout_batch_size=4",
    "ppo.minibatch_size=4",
    "rm_optim.batch_size=4",
    "summarizer.max_summary_tokens=8",
    "summarizer.lora_rank=4",
    "ppo.actor_lr=1e-3",
    "ppo.critic_lr=1e-2",
    "rm_optim.lr=1e-3",
    "reward_model.max_length=96",
    "data.max_eval_records=4",
    "save_every=1",
]


def test_a_summary_can_end_at_its_first_line_or_sentence():
    records = load_split("pets", "test")[:2]
    lines = "Name three pets the user might like, one per line. Start your response with ##Summary"
    texts = {}
    summarizer = Summarizer(SummarizerConfig(lora_rank=0, max_summary_tokens=24, instruction_text=lines))
    for stop in (False, True):
        summarizer.config.stop_at_line_end = stop
        rollout = summarizer.generate(*summarizer.batch_prompts(records, "pets"), sample=False, with_values=False)
        texts[stop] = rollout.texts
        kept = [summarizer.tokenizer.decode(ids[mask.bool()]) for ids, mask in zip(rollout.summary_ids,
                                                                                 rollout.summary_mask)]
        lengths = rollout.summary_mask.sum(1).tolist()
        # cut at the limit: 24 tokens without an end; a summary ended by its line break is not
        assert rollout.cut_at_limit.tolist() == [n == 24 and not (stop and t.endswith("\n")) for n, t in zip(lengths, kept)]
    assert any("\n" in text for text in texts[False])  # greedy SmolLM2 writes several lines here
    for whole, first_line, tokens in zip(texts[False], texts[True], kept):
        assert "\n" not in first_line and whole.startswith(first_line)
        assert tokens.count("\n") <= 1 and (tokens.endswith("\n") or "\n" not in whole)  # the break is the last token

    tokenizer = summarizer.tokenizer  # the header's line break and blank lines do not end a summary
    ids = tokenizer.encode("##Summary\nThe user prefers dogs.\n\nThe user", add_special_tokens=False)
    ends = [bool(summarizer._ends_summary([torch.tensor([[i]]) for i in ids[: k + 1]])) for k in range(len(ids))]
    assert [tokenizer.decode(ids[k]) for k in range(len(ids)) if ends[k]][0] == "\n"
    assert tokenizer.decode(ids[: ends.index(True)]) == "##Summary\nThe user prefers dogs."

    summarizer.config.stop_at_sentence_end = True  # a sentence's final mark ends it too, after some text
    del summarizer._end_ids
    ids = tokenizer.encode("##Summary\nThe user prefers dogs. Dogs are loyal.\n", add_special_tokens=False)
    ends = [bool(summarizer._ends_summary([torch.tensor([[i]]) for i in ids[: k + 1]])) for k in range(len(ids))]
    assert tokenizer.decode(ids[: ends.index(True) + 1]) == "##Summary\nThe user prefers dogs."


def test_a_greedy_summary_with_a_copy_block_repeats_no_run_of_prompt_tokens():
    copied = _CopiedContinuations(torch.tensor([[0, 5, 6, 7, 5, 6, 8]]), torch.tensor([[0, 1, 1, 1, 1, 1, 1]]), n=3)
    log_policy = torch.zeros(1, 10)
    # after 5, 6 the prompt goes on with 7 and with 8: a third token of either would copy it
    assert copied.block(log_policy, [torch.tensor([[5]]), torch.tensor([[6]])]).isinf().nonzero()[:, 1].tolist() == [7, 8]
    assert not copied.block(log_policy, [torch.tensor([[6]]), torch.tensor([[5]])]).isinf().any()  # 6, 5 is no run
    assert not copied.block(log_policy, [torch.tensor([[5]])]).isinf().any()  # too short to copy yet

    records = load_split("pets", "test")[1:4]  # users whose summary, with the paper's instruction, copies a fact
    summarizer = Summarizer(SummarizerConfig(lora_rank=0, max_summary_tokens=24))
    prompt_ids, prompt_mask = summarizer.batch_prompts(records, "pets")

    def longest_copy(rollout) -> int:  # the longest run of summary tokens found in its prompt
        longest = 0
        for prompt, mask, ids, kept in zip(prompt_ids, prompt_mask, rollout.summary_ids, rollout.summary_mask):
            prompt, ids = prompt[mask.bool()].tolist(), ids[kept.bool()].tolist()
            runs = [n for start in range(len(ids)) for n in range(1, len(ids) - start + 1)
                    if any(prompt[i : i + n] == ids[start : start + n] for i in range(len(prompt) - n + 1))]
            longest = max([longest, *runs])
        return longest

    assert longest_copy(summarizer.generate(prompt_ids, prompt_mask, sample=False, with_values=False)) >= 4
    summarizer.config.copy_block_tokens = 4
    assert longest_copy(summarizer.generate(prompt_ids, prompt_mask, sample=False, with_values=False)) == 3


def test_oldest_context_items_are_dropped_to_fit_the_window():
    summarizer = Summarizer(SummarizerConfig(max_prompt_tokens=200, lora_rank=0))
    record = load_split("pets", "test")[0]
    long = record.model_copy(update={"context": [*record.context, *record.context]})  # 6 pairs
    ids = summarizer.prompt_ids(long, "pets")
    assert len(ids) <= 200 and summarizer.n_context_truncated > 0
    text = summarizer.tokenizer.decode(ids)
    assert long.context[-1].chosen in text  # the newest item survives
    with pytest.raises(ValueError, match="empty context"):
        summarizer.prompt_ids(record.model_copy(update={"context": []}), "pets")
    huge = record.model_copy(update={"context": [PreferencePair(prompt="p", chosen="dogs " * 400, rejected="x")]})
    assert len(summarizer.prompt_ids(huge, "pets")) == 200


def test_long_responses_are_clipped_so_every_past_pair_fits():
    record = load_split("pets", "test")[0]
    long_pairs = [PreferencePair(prompt=f"question {i}", chosen=f"Answer {i} opens in style. " + "more " * 200,
                                 rejected=f"Other {i}. " + "text " * 200) for i in range(3)]
    record = record.model_copy(update={"context": long_pairs})
    whole = Summarizer(SummarizerConfig(max_prompt_tokens=300, lora_rank=0))
    assert "Answer 0 opens" not in whole.tokenizer.decode(whole.prompt_ids(record, "generic"))  # oldest dropped
    clipped = Summarizer(SummarizerConfig(max_prompt_tokens=300, max_response_chars=40, lora_rank=0))
    text = clipped.tokenizer.decode(clipped.prompt_ids(record, "generic"))
    assert clipped.n_context_truncated == 0
    assert all(f"Answer {i} opens in style" in text and f"question {i}" in text for i in range(3))
    assert "more more more more more more more" not in text and "…" in text


def test_summaries_continue_the_configured_start_even_when_the_prompt_is_cut():
    start = "The user prefers"
    summarizer = Summarizer(SummarizerConfig(max_prompt_tokens=120, max_summary_tokens=4, lora_rank=0,
                                             summary_start=start))
    record = load_split("pets", "test")[0]
    huge = record.model_copy(update={"context": [PreferencePair(prompt="p", chosen="dogs " * 400, rejected="x")]})
    for rec in (record, huge):
        ids = summarizer.prompt_ids(rec, "pets")
        assert summarizer.tokenizer.decode(ids).endswith("assistant\n" + start) and len(ids) <= 120
    (summary,) = summarizer.summarize([record], "pets")
    assert summary.startswith(start) and len(summary) > len(start) + 1  # the model wrote on from the start


def test_sampled_summaries_come_in_groups_per_record_as_a_rollout_draws_them():
    summarizer = Summarizer(SummarizerConfig(max_summary_tokens=6, lora_rank=0, temperature=1.0,
                                             summary_start="The user prefers"))
    records = load_split("pets", "test")[:2]
    torch.manual_seed(0)
    summaries = summarizer.summarize(records, "pets", sample=True, group=3)
    assert len(summaries) == 6 and all(s.startswith("The user prefers") for s in summaries)
    assert len(set(summaries)) > 1  # drawn at temperature 1, not the greedy summary repeated


def test_the_stated_instruction_gets_a_statement_of_the_preference_instead_of_a_copy():
    """Untrained, on users of animals never seen in training: the paper's instruction gets
    "The user's preference is that of horses to protect their skin…" (1 of 8 readable, measured);
    the stated one gets "The user prefers horses." (6 of 8: goldfish is named for turtles users)."""
    records = load_split("pets-val", "validation")[:8]

    def readable(instruction):
        summarizer = Summarizer(SummarizerConfig(lora_rank=0, max_summary_tokens=16, instruction=instruction))
        return readability_rate(summarizer.summarize(records, "pets"), records)

    assert readable("stated") >= 0.6 > 0.3 >= readable("paper")


def test_an_instruction_in_your_own_words_replaces_the_named_one():
    context = "The user chose: Dogs bark. The user rejected: Cats purr."
    stated, own = (summarizer_prompt(context, "pets", "stated", words) for words in ("", "Name the animal."))
    assert stated.startswith(context) and "'The user prefers X.'" in stated
    contrast = summarizer_prompt(context, "pets", "contrast")
    assert contrast.startswith(context) and "'The user prefers X over Y.'" in contrast
    assert own == f"{context}\n\nName the animal."
    generic = summarizer_prompt(context, "dsp", "paper", "Name the style.")
    assert generic.endswith(f"{context}\n\nName the style.") and generic.startswith("In order to provide")


def _alone_logprobs(summarizer, records, rollout):
    """log π(z_t) from a plain forward pass over each summary's prompt alone (no padding, no other
    row, no cache) and the summary."""
    expected = torch.zeros_like(rollout.logprobs)
    for row, (index, summary, mask) in enumerate(zip(rollout.prompt_index, rollout.summary_ids, rollout.summary_mask)):
        prompt = torch.tensor([summarizer.prompt_ids(records[index], "pets")])
        ids = torch.cat([prompt, summary[None, : int(mask.sum())]], 1)
        logits = summarizer.lm(input_ids=ids).logits[0, prompt.shape[1] - 1 : -1].float() / summarizer.config.temperature
        expected[row, : logits.shape[0]] = torch.log_softmax(logits, -1).gather(1, ids[0, prompt.shape[1]:, None])[:, 0]
    return expected


def test_selected_logprobs_match_log_softmax_in_value_and_gradient():
    torch.manual_seed(0)
    logits = (3 * torch.randn(2, 5, 11, dtype=torch.float64)).requires_grad_()
    tokens = torch.randint(0, 11, (2, 5))
    weights = torch.randn(2, 5, dtype=torch.float64)
    ours = selected_logprobs(logits, tokens)
    (grad,) = torch.autograd.grad((ours * weights).sum(), logits)
    reference = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    (expected,) = torch.autograd.grad((reference * weights).sum(), logits)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(grad, expected)
    assert torch.autograd.gradcheck(selected_logprobs, (logits, tokens))


@torch.no_grad()
def test_sampling_from_a_shared_prompt_prefix_gives_the_policy_log_probs():
    """π_old read off the sampling loop (static cache, prefix shared by a group, the prompts' common
    head encoded once for the batch) is exactly π_θ of each prompt read alone."""
    torch.manual_seed(0)
    summarizer = Summarizer(SummarizerConfig(max_summary_tokens=6, lora_rank=4, temperature=0.8))
    for name, p in summarizer.named_parameters():
        if "lora_B" in name or "value_head" in name:
            p.normal_(std=0.02)  # adapters and critic away from their zero init
    records = [load_split("pets", "test")[0], load_split("pets-ood", "test")[0]]  # prompts of unlike lengths
    prompt_ids, prompt_mask = summarizer.batch_prompts(records, "pets")
    head = summarizer.tokenizer.decode(prompt_ids[0, : int(prompt_mask.cumprod(1).all(0).sum())])
    assert head.startswith("<|im_start|>system") and "<|im_start|>user\n" in head
    assert not prompt_mask.all()  # the shorter prompt's padding stands between its head and the rest
    rollout = summarizer.generate(prompt_ids, prompt_mask, group=3, sample=True)
    assert rollout.prompt_index.tolist() == [0, 0, 0, 1, 1, 1] and len(rollout.texts) == 6

    mask = rollout.summary_mask.bool()
    expected = _alone_logprobs(summarizer, records, rollout)
    torch.testing.assert_close(rollout.logprobs[mask], expected[mask], atol=1e-4, rtol=1e-4)
    logprobs, values = summarizer.continue_from(rollout.prefix, rollout.prompt_index, rollout.summary_ids,
                                                rollout.summary_mask)
    torch.testing.assert_close(logprobs[mask], expected[mask], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(values[mask], rollout.values[mask], atol=1e-4, rtol=1e-4)

    reference = summarizer.reference_logprobs(rollout, prompt_ids, prompt_mask)
    with summarizer.lm.disable_adapter():
        expected_reference = _alone_logprobs(summarizer, records, rollout)
    torch.testing.assert_close(reference[mask], expected_reference[mask], atol=1e-4, rtol=1e-4)
    assert (reference[mask] - logprobs[mask]).abs().max() > 1e-3  # the adapters do change the policy


@torch.no_grad()
def test_a_rollout_scores_each_distinct_summary_of_a_context_once_and_as_alone(monkeypatch):
    reward_model = RewardModel(RewardModelConfig(similarity_weight=5.0, max_length=96)).eval()
    dogs, cats = load_split("pets", "test")[:2]
    pairs = [dogs] * 3 + [cats] * 3
    summaries = ["The user prefers dogs."] * 2 + ["The user prefers cats."] + ["The user prefers cats."] * 3
    scored = []
    encode_pairs = reward_model.encode_pairs
    monkeypatch.setattr(reward_model, "encode_pairs", lambda records, texts: scored.append(len(records))
                        or encode_pairs(records, texts))
    chosen, rejected = score_distinct(reward_model, pairs, summaries, "pets")
    assert scored == [3]  # (dogs, "dogs"), (dogs, "cats"), (cats, "cats")
    expected_chosen, expected_rejected, _ = score_pairs(reward_model, reward_model, pairs, summaries, "pets")
    torch.testing.assert_close(chosen, expected_chosen, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rejected, expected_rejected, atol=1e-5, rtol=1e-5)
    assert chosen[0] == chosen[1] and chosen[3] == chosen[5] and chosen[1] != chosen[2]


def test_build_trains_only_the_adapters_and_value_head_of_the_summarizer(tmp_path):
    run = build(load_config(PlusConfig, None, [*TINY_PLUS, "data.max_train_records=8", f"output_dir={tmp_path}"]))
    trained = [n for n, p in run.summarizer.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n or n.startswith("value_head") for n in trained)
    assert sum(p.numel() for p in run.actor.params) < 0.1 * sum(p.numel() for p in run.summarizer.parameters())
    frozen = {n for n, p in run.reward_model.named_parameters() if not p.requires_grad}
    assert frozen == {"backbone.pooler.dense.weight", "backbone.pooler.dense.bias"}  # lora_rank=0: all but the
    # encoder's own pooler, which the reward model never reads


@pytest.mark.slow
def test_co_training_updates_both_models_and_evaluates_with_summaries(tmp_path):
    """PPO + GAE + critic with a KL to the reference (RLOO without one: the "PLUS learns" test)."""
    cfg = load_config(PlusConfig, None, [*TINY_PLUS, "ppo.advantage_estimator=gae", "ppo.kl_coef=0.001",
                                         f"output_dir={tmp_path / 'run'}"])
    run_dir = train_plus(cfg)

    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [0, 1]
    for m in metrics:
        assert -10.0 <= m["reward/return"] <= 0.0
        assert 1 <= m["summary/tokens"] <= 8
        for key in ("policy/loss", "policy/clipfrac", "value/loss", "rm/loss"):
            assert key in m
        assert math.isfinite(m["policy/kl"])  # β > 0: measured and logged
    first = load_file(run_dir / "checkpoints" / "step-000001" / "summarizer" / "summarizer.safetensors")
    last = load_file(latest_checkpoint(run_dir) / "summarizer" / "summarizer.safetensors")
    lora_b = [k for k in last if "lora_B" in k]
    assert lora_b and any(not torch.equal(first[k], last[k]) for k in lora_b)  # the policy moved
    assert any(last[k].abs().sum() > 0 for k in lora_b)
    assert any(k.startswith("value_head") for k in last)
    assert not torch.equal(first["value_head.weight"], last["value_head.weight"])  # the critic trains

    results = evaluate_run(run_dir)
    assert results[0]["n_pairs"] == 4
    rows = [json.loads(line) for line in (run_dir / "eval" / "pets.predictions.jsonl").read_text().splitlines()]
    assert all(isinstance(r["summary"], str) and r["summary"] in r["conditioning"] for r in rows)
    # the edit-following check, as written and restated by the run's summarizer first
    edits = json.loads((run_dir / "eval" / "checks" / "edit_following.json").read_text())
    restated = edits["restated"]
    assert edits["n_cases"] == restated["n_cases"] > 0 and 0 <= restated["edit_following"] <= 1
    assert set(restated["restated_as"]) == {c.statement for c in edit_cases()}
    assert all(text.strip() for text in restated["restated_as"].values())
    assert 0 <= restated["restated_right"] <= 1
    assert edits["scored_with"]["checkpoint"] == latest_checkpoint(run_dir).name
    validation = edits["validation"]  # the wordings and animals designs are chosen on, checked the same way
    assert set(validation["restated"]["restated_as"]) == {c.statement for c in edit_cases(validation=True)}
    assert validation["n_cases"] == len(edit_cases(validation=True)) and set(validation["by_order"]) == {
        "liked first", "liked second"}
    edits_file = run_dir / "eval" / "checks" / "edit_following.json"
    written = edits_file.stat().st_mtime_ns
    evaluate_run(run_dir)  # another table of the same checkpoint does not run the check again
    assert edits_file.stat().st_mtime_ns == written
    edits_file.write_text(json.dumps({k: v for k, v in edits.items() if k != "validation"}))
    assert evaluate_run(run_dir, []) == []  # no dataset: the edit check alone, completed where it lacks a part
    assert json.loads(edits_file.read_text())["validation"]["n_cases"] == validation["n_cases"]


@pytest.mark.slow
def test_plus_learns_the_reward_model_reads_fresh_summaries_and_the_return_rises(tmp_path):
    """Pets at CI size: each user's summary need only say which animal they chose. Over eight
    iterations the reward model's accuracy on each fresh batch of summaries (before it trains on
    them) and the summarizer's return must both rise, from chance (six iterations sufficed with
    torch's dropout masks, return -0.685 → -0.363 over the first and last three; with other draws of
    the same masks the return rose 0.09 in six, -0.70 → -0.52 by the sixth, still rising)."""
    cfg = load_config(PlusConfig, None, [
        "iterations=8", "rollout_batch_size=8", "ppo.advantage_estimator=rloo", "ppo.group_size=2", "ppo.kl_coef=0",
        "ppo.minibatch_size=16", "ppo.actor_lr=1e-4", "rm_optim.batch_size=8", "rm_optim.lr=3e-4",
        "summarizer.max_summary_tokens=8", "summarizer.temperature=0.3", "summarizer.lora_rank=4",
        "reward_model.max_length=64", "data.eval_datasets=[]", "save_every=100", f"output_dir={tmp_path / 'run'}"])
    rows = [json.loads(line) for line in (train_plus(cfg) / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["rm/accuracy_before_update"] for r in rows]
    returns = [r["reward/return"] for r in rows]
    first, last = slice(0, 3), slice(5, 8)
    assert sum(accuracy[first]) / 3 <= 0.6, accuracy  # starts near chance
    assert sum(accuracy[last]) / 3 >= sum(accuracy[first]) / 3 + 0.2, accuracy
    assert sum(returns[last]) / 3 >= sum(returns[first]) / 3 + 0.1, returns
    assert max(returns) > -0.5 > min(returns), returns  # log σ(margin): from ~log ½ towards 0
    assert not any("policy/kl" in r for r in rows)  # β = 0: the KL is not measured, so not logged as 0


@pytest.mark.slow
def test_replay_keeps_teaching_restatements_during_co_training(tmp_path):
    """With replay_coef, every PPO step also descends the restatements' NLL (on replay_batch_size
    of them): logged per iteration, and falling as RL goes on without any warm-up steps."""
    cfg = load_config(PlusConfig, None, [*TINY_PLUS, "iterations=4", "freeze_summarizer_iterations=0",
                                         "summarizer.instruction=stated", "reading_warmup.replay_coef=1.0",
                                         "reading_warmup.batch_size=16", "reading_warmup.replay_batch_size=8",
                                         "report_to=none", f"output_dir={tmp_path}"])
    rows = [json.loads(line) for line in (train_plus(cfg) / "metrics.jsonl").read_text().splitlines()]
    replay = [row["policy/replay_nll"] for row in rows]
    assert len(replay) == 4 and all(math.isfinite(x) for x in replay)
    assert replay[-1] < 0.5 * replay[0], replay


@pytest.mark.slow
def test_written_notes_train_the_reward_model_on_peoples_own_words(tmp_path):
    """With written_notes, each reward-model update also takes `rows` pairs of users who wrote a
    note, drawn by seed and iteration (a resumed run draws the same) and scored under the note as
    written: the update reads exactly those (pair, note) rows, `written_notes.epochs` times, and
    lowers their loss."""
    cfg = load_config(PlusConfig, None, [*TINY_PLUS, "written_notes.dataset=pets-notes", "written_notes.rows=16",
                                         "written_notes.epochs=2", "rm_optim.epochs=1", "rm_optim.lr=1e-4",
                                         "report_to=none", f"output_dir={tmp_path}"])
    run = build(cfg)
    assert len(run.written_notes.rows) > 1000  # about two users in three of Pets' 1,970 wrote a note
    assert all(pair.meta["user_type"] in note.lower() for pair, note in run.written_notes.rows[:100])
    drawn = run.written_notes.draw(3)
    assert len(drawn) == 16 and drawn == run.written_notes.draw(3) != run.written_notes.draw(4)
    pairs, notes = (list(column) for column in zip(*drawn))

    def loss_and_tokens():
        run.reward_model.eval()
        with torch.no_grad():
            chosen, rejected, tokens = score_pairs(run.reward_model, run.reward_model, pairs, notes, run.prompts)
        return bradley_terry_loss(chosen, rejected).item(), tokens

    before, tokens = loss_and_tokens()
    stats = reward_update(run, [], [], iteration=3)
    assert stats["tokens/reward_model"] == 2 * tokens
    assert loss_and_tokens()[0] < before


def test_a_head_loss_on_notes_teaches_the_cross_encoder_to_read_them_beside_the_similarity_term(tmp_path):
    """written_notes.head_loss_coef: with a similarity term, the note rows are also ranked by the head's
    reward alone; from the same start, an update with it ranks those rows by the head better than one
    without, and the reward the update returns is still the head plus the similarity term."""
    def head_loss_after_update(coef):
        cfg = load_config(PlusConfig, None, [*TINY_PLUS, "written_notes.dataset=pets-notes", "written_notes.rows=64",
                                             f"written_notes.head_loss_coef={coef}", "reward_model.similarity_weight=5",
                                             "rm_optim.lr=3e-4", "report_to=none", f"output_dir={tmp_path / str(coef)}"])
        run = build(cfg)
        pairs, notes = (list(column) for column in zip(*run.written_notes.draw(3)))
        reward_update(run, [], [], iteration=3)
        run.reward_model.eval()
        with torch.no_grad():
            (total_c, head_c), (total_r, head_r), _ = score_pairs(run.reward_model, run.reward_model, pairs, notes,
                                                                  run.prompts, with_head=True)
            plain_c, plain_r, _ = score_pairs(run.reward_model, run.reward_model, pairs, notes, run.prompts)
        assert torch.equal(total_c, plain_c) and torch.equal(total_r, plain_r) and not torch.equal(total_c, head_c)
        return bradley_terry_loss(head_c, head_r).item()

    with_head_loss, without = head_loss_after_update(4.0), head_loss_after_update(0.0)
    assert with_head_loss < without - 0.2, (with_head_loss, without)
    with pytest.raises(ValueError, match="head_loss_coef"):
        load_config(PlusConfig, None, ["written_notes.head_loss_coef=-1"])


def test_a_reward_update_passes_over_summaries_and_notes_as_often_as_each_asks():
    """Rows 0-1 are summaries, 2-4 notes: each pass holds every row it covers once."""
    one_over_summaries = load_config(PlusConfig, None, ["rm_optim.epochs=1", "written_notes.epochs=3"])
    assert [p.tolist() for p in reward_passes(one_over_summaries, 2, 3)] == [[0, 1, 2, 3, 4], [2, 3, 4], [2, 3, 4]]
    notes_follow = load_config(PlusConfig, None, ["rm_optim.epochs=2"])
    assert [p.tolist() for p in reward_passes(notes_follow, 2, 3)] == [[0, 1, 2, 3, 4]] * 2
    fewer_over_notes = load_config(PlusConfig, None, ["rm_optim.epochs=2", "written_notes.epochs=1"])
    assert [p.tolist() for p in reward_passes(fewer_over_notes, 2, 3)] == [[0, 1, 2, 3, 4], [0, 1]]
    assert [p.tolist() for p in reward_passes(one_over_summaries, 2, 0)] == [[0, 1]]  # no notes drawn


@pytest.mark.slow
def test_notes_warm_up_teaches_the_reward_model_to_read_notes_it_never_saw(tmp_path):
    """written_notes.warmup_steps: before iteration 0 the reward model takes Bradley-Terry steps on
    (pair, note) rows alone, and then ranks the pairs of users whose notes it never trained on
    better (lower Bradley-Terry loss) than its untrained head did; a warm-up with no notes to read
    is refused on load."""
    cfg = load_config(PlusConfig, None, [*TINY_PLUS, "written_notes.dataset=pets-notes",
                                         "written_notes.warmup_steps=40", "rm_optim.batch_size=8", "rm_optim.lr=1e-4",
                                         "report_to=none", f"output_dir={tmp_path}"])
    run = build(cfg)
    unseen = run.written_notes.rows[-64:]
    run.written_notes.rows = run.written_notes.rows[:-64]

    def loss_on_unseen():
        run.reward_model.eval()
        with torch.no_grad():
            chosen, rejected, _ = score_pairs(run.reward_model, run.reward_model, [p for p, _ in unseen],
                                              [note for _, note in unseen], run.prompts)
        return bradley_terry_loss(chosen, rejected).item()

    before = loss_on_unseen()
    stats = notes_warmup(run)
    assert stats["notes_warmup/loss_last"] < stats["notes_warmup/loss_first"]
    assert loss_on_unseen() < before - 0.05, before
    with pytest.raises(ValueError, match="needs written_notes.dataset"):
        load_config(PlusConfig, None, ["written_notes.warmup_steps=10"])


@pytest.mark.slow
def test_the_summarizer_waits_for_the_reward_models_warm_up(tmp_path):
    """freeze_summarizer_iterations=1: iteration 0 trains the reward model only (the adapters'
    B matrices stay at their zero init, and no reference pass measures a KL no step uses),
    iteration 1 trains both."""
    cfg = load_config(PlusConfig, None, [*TINY_PLUS, "ppo.advantage_estimator=rloo", "ppo.group_size=2",
                                         "ppo.kl_coef=0.05", "freeze_summarizer_iterations=1", "data.eval_datasets=[]",
                                         f"output_dir={tmp_path / 'run'}"])
    run_dir = train_plus(cfg)

    def saved(step, part, file):
        return load_file(run_dir / "checkpoints" / f"step-{step:06d}" / part / file)

    warm_up, after = (saved(step, "summarizer", "summarizer.safetensors") for step in (1, 2))
    lora_b = [k for k in after if "lora_B" in k]
    assert lora_b and all(warm_up[k].abs().sum() == 0 for k in lora_b)
    assert any(after[k].abs().sum() > 0 for k in lora_b)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "policy/loss" not in metrics[0] and "policy/loss" in metrics[1]
    assert "policy/kl" not in metrics[0] and math.isfinite(metrics[1]["policy/kl"])
    assert "rm/loss" in metrics[0]


def test_a_frozen_summarizer_saves_and_loads_its_adapters(tmp_path):
    """PLUS-untrained freezes the summarizer; its checkpoint must still load for evaluation."""
    summarizer = Summarizer(SummarizerConfig(lora_rank=2))
    summarizer.requires_grad_(False)
    summarizer.save(tmp_path / "s")
    saved = load_file(tmp_path / "s" / "summarizer.safetensors")
    assert any("lora_A" in k for k in saved) and "value_head.weight" in saved
    reloaded = Summarizer.load(tmp_path / "s")
    for name, tensor in saved.items():
        assert torch.equal(reloaded.state_dict()[name], tensor)


@pytest.mark.slow
def test_co_training_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    three = [*TINY_PLUS, "iterations=3", "data.eval_datasets=[]"]
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([sys.executable, "-m", "plusrl.cli", "train", "--method", "plus", "--no-eval", *three,
                             f"output_dir={killed_dir}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    deadline = time.time() + 400
    while latest_checkpoint(killed_dir) is None:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest_checkpoint(killed_dir).name in ("step-000001", "step-000002")

    train_plus(load_config(PlusConfig, killed_dir / "config.yaml"), resume=True)
    train_plus(load_config(PlusConfig, None, [*three, f"output_dir={clean_dir}"]))

    def final(run_dir, part, file):
        return load_file(latest_checkpoint(run_dir) / part / file)

    for part, file in (("summarizer", "summarizer.safetensors"), ("model", "model.safetensors")):
        resumed, clean = final(killed_dir, part, file), final(clean_dir, part, file)
        for name, tensor in clean.items():
            torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5)
    iterations = [json.loads(line)["iteration"] for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    assert iterations == [0, 1, 2]
    logged = (killed_dir / "metrics.jsonl").read_text()
    assert train_plus(load_config(PlusConfig, killed_dir / "config.yaml"), resume=True) == killed_dir
    assert (killed_dir / "metrics.jsonl").read_text() == logged  # a finished run resumes to itself


@pytest.mark.slow
def test_two_cpu_processes_with_gloo_co_train_under_accelerate_launch(tmp_path):
    """The same loop under `accelerate launch` (DDP over gloo on CPU): no code change, the global
    batch split across processes, one set of logs and checkpoints. `--multi_gpu` on a machine without
    GPUs is what starts several CPU processes: `--cpu` starts one, whatever --num_processes says."""
    import os
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_cpu_threads_per_process", "1", "-m", "plusrl.cli", "train", "--method", "plus", "--no-eval",
           *TINY_PLUS, "iterations=1", "ppo.advantage_estimator=rloo", "ppo.group_size=2", f"output_dir={run_dir}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes, MULTI_CPU" in done.stdout  # two ranks really ran
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0]  # the main process logs once
    assert rows[0]["tokens/summary"] > 0
    assert (latest_checkpoint(run_dir) / "summarizer" / "summarizer.safetensors").is_file()
