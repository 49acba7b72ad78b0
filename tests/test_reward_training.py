"""A real reward model (embedded all-MiniLM-L6-v2) trains on CPU: loss falls, runs resume."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from plusrl.cli import main
from plusrl.config import ConfigError, load_config
from plusrl.data.registry import load_split
from plusrl.eval.accuracy import score_pairs
from plusrl.eval.runs import evaluate_run
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel
from plusrl.run_dir import RunDir
from plusrl.training.checkpoint import latest_checkpoint
from plusrl.training.configs import OptimConfig, RewardTrainConfig
from plusrl.training.losses import bradley_terry_loss
from plusrl.training.reward import train_reward_model
from plusrl.training.run_context import adamw
from plusrl.training.runtime import seed_everything

TINY = [
    "method=oracle",
    "data.max_train_records=48",
    "data.max_eval_records=32",
    "rm_optim.batch_size=16",
    "rm_optim.epochs=3",
    "rm_optim.lr=2e-4",
    "reward_model.max_length=64",
]


def _bt_loss(model, records, conditionings):
    r_c, r_r, _ = score_pairs(model, records, conditionings, batch_size=64)
    return bradley_terry_loss(r_c, r_r).item()


def test_oracle_reward_model_loss_falls(tmp_path, capsys):
    cfg = load_config(RewardTrainConfig, None, [*TINY, f"output_dir={tmp_path / 'run'}"])
    records = load_split("pets", "train")[:48]
    conditionings = build_conditionings("oracle", records, "pets")
    seed_everything(cfg.seed)
    before = _bt_loss(RewardModel(cfg.reward_model), records, conditionings)

    run_dir = train_reward_model(cfg)
    after = _bt_loss(RunDir(run_dir).reward_model(), records, conditionings)
    assert after < before - 0.1, (before, after)
    saved = RunDir(run_dir).config_file.read_text()  # `auto` is saved as what it resolved to, and why
    assert saved.startswith("# precision auto → ") and "measured" in saved.splitlines()[0]
    assert RunDir(run_dir).config().precision in ("bf16", "fp32")

    results = evaluate_run(run_dir)
    assert results[0]["n_pairs"] == 32 and 0.0 <= results[0]["accuracy"] <= 1.0
    assert (run_dir / "eval" / "pets.predictions.jsonl").read_text().count("\n") == 32
    assert main(["eval", "--run-dir", str(run_dir), "--dataset", "pets-ood", "--max-records", "8"]) == 0
    printed = capsys.readouterr().out  # the table: every dataset the run has results for
    assert "pets-ood" in printed and f"{100 * results[0]['accuracy']:.1f}" in printed
    with pytest.raises(FileExistsError, match="--resume"):
        train_reward_model(cfg)  # never overwrite a run by accident


def test_max_length_truncation_is_counted(tmp_path):
    cfg = load_config(RewardTrainConfig, None, ["method=icl", "reward_model.max_length=32"])
    model = RewardModel(cfg.reward_model)
    records = load_split("pets", "test")[:4]
    enc = model.encode(build_conditionings("icl", records, "pets"), [r.prompt for r in records], [r.chosen for r in records])
    assert enc.n_truncated == 4 and enc.input_ids.shape[1] == 32


def test_a_summary_template_of_the_summary_alone_halves_each_row():
    """reward_model.summary_template="{summary}" scores the summary without App. I.1's sentence around it:
    the rows it reads are shorter by the sentence's tokens; a template without one {summary} is refused."""
    records = load_split("pets", "test")[:4]
    summaries = ["  The user prefers dogs. "] * 4
    assert build_conditionings("plus", records, "pets", summaries, "{summary}") == ["The user prefers dogs."] * 4
    paper = build_conditionings("plus", records, "pets", summaries)
    assert paper[0].startswith("Here is the summary of my preferences") and "The user prefers dogs.." in paper[0]
    lengths = {}
    for template in ("{summary}", None):
        overrides = [f'reward_model.summary_template="{template}"'] if template else []
        model = RewardModel(load_config(RewardTrainConfig, None, overrides).reward_model)
        conditionings = [model.as_conditioning(s) for s in summaries]
        assert conditionings == (["The user prefers dogs."] * 4 if template else paper)
        lengths[template] = model.encode(conditionings, [r.prompt for r in records], [r.chosen for r in records]).input_ids.shape[1]
    assert lengths["{summary}"] <= lengths[None] - 25, lengths
    for bad in ("{user}", "no place for it", "{summary} and {summary}", "{summary} {0}"):
        with pytest.raises(ValueError, match="summary_template"):
            load_config(RewardTrainConfig, None, [f'reward_model.summary_template="{bad}"'])
    with pytest.raises(ConfigError, match="quote the text"):
        load_config(RewardTrainConfig, None, ["reward_model.summary_template={summary}"])


@torch.no_grad()
def test_a_row_scores_the_same_in_a_batch_of_unlike_lengths_as_alone():
    """Padding to a batch's longest row changes no row's reward, head and similarity term alike."""
    records = load_split("pets", "test")[:6]
    cfg = load_config(RewardTrainConfig, None, ["method=oracle", "reward_model.similarity_weight=5.0"])
    model = RewardModel(cfg.reward_model).eval()
    notes = ["The user prefers dogs.", "Cats bore me; dogs never do, whatever my neighbours say about them all.",
             "The user prefers cats.", "I like cats.", "Dogs, always dogs: walks, fetch and the way they greet me.", "Cats."]
    conditionings = [model.as_conditioning(note) for note in notes]
    batch = model.encode(conditionings, [r.prompt for r in records], [r.chosen for r in records])
    assert len(set(batch.attention_mask.sum(1).tolist())) > 2  # rows of unlike lengths
    alone = torch.cat([model(model.encode([c], [r.prompt], [r.chosen])) for c, r in zip(conditionings, records)])
    torch.testing.assert_close(model(batch), alone, atol=1e-5, rtol=1e-5)


def test_disable_dropout_makes_training_mode_scores_deterministic():
    """With dropout a reward model in training mode scores the same input differently each pass;
    reward_model.disable_dropout=true turns every dropout off, so the two passes agree."""
    records = load_split("pets", "test")[:4]
    for disable, same in ((False, False), (True, True)):
        cfg = load_config(RewardTrainConfig, None, ["method=oracle", f"reward_model.disable_dropout={disable}"])
        model = RewardModel(cfg.reward_model).train()
        enc = model.encode(build_conditionings("oracle", records, "pets"), [r.prompt for r in records],
                           [r.chosen for r in records])
        with torch.no_grad():
            assert torch.equal(model(enc), model(enc)) == same


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    args = [sys.executable, "-m", "plusrl.cli", "train", "--no-eval", *TINY, "save_every=1", f"output_dir={killed_dir}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TQDM_DISABLE": "1"})
    deadline = time.time() + 240
    while time.time() < deadline:
        latest = latest_checkpoint(killed_dir)
        if latest is not None and int(latest.name.split("-")[1]) >= 3:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = latest_checkpoint(killed_dir)
    assert killed_at is not None
    RewardModel.load(killed_at / "model")  # whatever moment it died, the last checkpoint loads

    resumed = load_config(RewardTrainConfig, killed_dir / "config.yaml")
    train_reward_model(resumed, resume=True)
    train_reward_model(load_config(RewardTrainConfig, None, [*TINY, f"output_dir={clean_dir}"]))

    final_resumed = load_file(latest_checkpoint(killed_dir) / "model" / "model.safetensors")
    final_clean = load_file(latest_checkpoint(clean_dir) / "model" / "model.safetensors")
    assert latest_checkpoint(killed_dir).name == latest_checkpoint(clean_dir).name == "step-000009"
    for name, tensor in final_clean.items():
        torch.testing.assert_close(final_resumed[name], tensor, rtol=1e-4, atol=1e-5)


def test_the_fused_optimizer_takes_torchs_reference_adamw_steps():
    """Every trainer's AdamW is fused (one kernel a step, faster on CPU): the same update as
    the reference for-loop AdamW, with every optimizer field honoured, to float rounding."""
    torch.manual_seed(0)
    ours_model, reference_model = torch.nn.Linear(8, 3), torch.nn.Linear(8, 3)
    reference_model.load_state_dict(ours_model.state_dict())
    start = [p.detach().clone() for p in ours_model.parameters()]
    config = OptimConfig(lr=1e-2, adam_beta1=0.8, adam_beta2=0.9, weight_decay=0.1)
    ours, params = adamw(ours_model, config)
    reference = torch.optim.AdamW(reference_model.parameters(), lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1,
                                  foreach=False)
    assert ours.defaults["fused"] and params == list(ours_model.parameters())
    x = torch.randn(16, 8)
    for _ in range(5):
        for model, optimizer in ((ours_model, ours), (reference_model, reference)):
            model(x).pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for got, want, before in zip(ours_model.parameters(), reference_model.parameters(), start):
        assert (got - before).abs().max() > 1e-3  # five steps moved every weight
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_longest_first_cuts_the_longer_sequence_first():
    from plusrl.models.reward_model import longest_first

    assert longest_first([10, 3], 8) == [5, 3]  # the shorter stays whole
    assert longest_first([3, 10], 8) == [3, 5]
    assert longest_first([10, 9], 8) == [4, 4]  # both over half: halves
    assert longest_first([9, 9], 7) == [4, 3]
    assert longest_first([2, 3], 8) == [2, 3] and longest_first([50], 8) == [8]


def test_vpl_user_latent_can_change_which_response_ranks_first():
    from plusrl.models.reward_model import RewardModelConfig

    torch.manual_seed(0)
    model = RewardModel(RewardModelConfig(max_length=32, latent_dim=8, latent_hidden=16)).eval()
    record = load_split("pets", "test")[0]
    batch = model.encode_pairs([record], None)
    margins = []
    with torch.no_grad():
        for _ in range(8):
            chosen, rejected = model(batch, torch.randn(1, 8).repeat(2, 1))
            margins.append((chosen - rejected).item())
    # a head linear in z would add the same w·z to both responses: every margin would be equal
    assert max(margins) - min(margins) > 1e-3, margins


def test_centered_similarity_by_hand():
    from plusrl.models.reward_model import centered_similarity

    # ê(c) = (1, 0), ê(s) = (0.6, 0.8), μ = (0.5, 0.5): (0.5, −0.5)·(0.6, 0.8) = −0.1
    got = centered_similarity(torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(got, torch.tensor([-0.1]))
    # μ = ê(c) (a user exactly like the average one): nothing sets them apart
    assert centered_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([1.0, 0.0])) == 0


def test_the_population_mean_is_learned_in_training_kept_for_scoring_and_saved(tmp_path):
    from plusrl.models.reward_model import RewardModelConfig

    model = RewardModel(RewardModelConfig(max_length=32, similarity_weight=5.0, similarity_centering=True))
    records = load_split("pets", "test")[:4]
    batch = model.encode_pairs(records, build_conditionings("oracle", records, "pets"))
    assert model.conditioning_mean.abs().sum() == 0
    model.train()
    model(batch)
    trained_mean = model.conditioning_mean.clone()
    assert trained_mean.abs().sum() > 0  # folded in from the batch
    model.eval()
    with torch.no_grad():
        scores = model(batch)
    torch.testing.assert_close(model.conditioning_mean, trained_mean)  # scoring leaves it as it is
    model.save(tmp_path / "rm")
    reloaded = RewardModel.load(tmp_path / "rm").eval()
    torch.testing.assert_close(reloaded.conditioning_mean, trained_mean)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(batch), scores)
