"""Throughput of one PLUS co-training step, phase by phase, as MFU of this machine's measured peak.

    python benchmarks/co_training_step.py [--users 16] [--summary-tokens 32]

Measures in the same run: the matmul peak (fp32 and bf16), then on real Pets users with
the embedded models: summary generation, the reference-policy pass, the summarizer PPO
update (LoRA forward + backward) and the reward-model update. FLOPs count 2·N per token
for a forward pass and 2·N more for the activation gradients of a backward pass, plus 2·N
for weight gradients where every weight trains (N = non-embedding parameters; LoRA
adapters, being tiny, are left out).
"""

from __future__ import annotations

import argparse
import time

import torch

from plusrl.data.registry import load_split
from plusrl.models.conditioning import build_conditionings
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.models.summarizer import Summarizer, SummarizerConfig
from plusrl.training.losses import bradley_terry_loss


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed" not in n and "lora_" not in n
               and "lm_head" not in n)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--summary-tokens", type=int, default=32)
    args = parser.parse_args()

    peak_fp32, peak_bf16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16, n=512, repeats=2)
    peak = max(peak_fp32, peak_bf16)
    print(f"threads={torch.get_num_threads()}  matmul peak: fp32 {peak_fp32 / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak_bf16 / 1e9:.1f} GFLOP/s (MFU below is against {peak / 1e9:.1f})")

    records = load_split("pets", "train")[: args.users]
    summarizer = Summarizer(SummarizerConfig(max_summary_tokens=args.summary_tokens))
    reward_model = RewardModel(RewardModelConfig(max_length=128))
    n_summarizer, n_rm = non_embedding_params(summarizer.lm), non_embedding_params(reward_model.backbone)

    prompt_ids, prompt_mask = summarizer.batch_prompts(records, "pets")
    prompt_tokens = int(prompt_mask.sum())
    rollout, t_gen = timed(lambda: summarizer.generate(prompt_ids, prompt_mask, sample=True))
    summary_tokens = int(rollout.summary_mask.sum())
    # generate() = sampling + one scoring pass over prompt + summary (log π_old and values)
    gen_flops = 2 * n_summarizer * (prompt_tokens + summary_tokens) * 2

    def reference_pass():
        with torch.no_grad():
            return summarizer.policy_forward(rollout.prompt_ids, rollout.prompt_mask, rollout.summary_ids,
                                             rollout.summary_mask, use_adapter=False, with_values=False)

    _, t_ref = timed(reference_pass)
    ref_flops = 2 * n_summarizer * (prompt_tokens + summary_tokens)

    def ppo_update():
        logprobs, values = summarizer(rollout.prompt_ids, rollout.prompt_mask, rollout.summary_ids, rollout.summary_mask)
        (logprobs.sum() + values.sum()).backward()

    _, t_ppo = timed(ppo_update)
    ppo_flops = 4 * n_summarizer * (prompt_tokens + summary_tokens)

    cond = build_conditionings("plus", records, "pets", rollout.texts)
    enc = reward_model.encode_pairs(records, cond)
    rm_tokens = int(enc.attention_mask.sum())

    def rm_update():
        rewards = reward_model(enc.input_ids, enc.attention_mask)
        bradley_terry_loss(rewards[: len(records)], rewards[len(records) :]).backward()

    _, t_rm = timed(rm_update)
    rm_flops = 6 * n_rm * rm_tokens

    print(f"users={args.users}  prompt tokens={prompt_tokens}  summary tokens={summary_tokens}  RM tokens={rm_tokens}")
    print(f"{'phase':<28}{'seconds':>9}{'tokens/s':>11}{'GFLOP/s':>10}{'MFU':>8}")
    for name, seconds, tokens, flops in [
        ("generate + score (π_old, V)", t_gen, prompt_tokens + summary_tokens, gen_flops),
        ("reference pass", t_ref, prompt_tokens + summary_tokens, ref_flops),
        ("summarizer PPO update", t_ppo, prompt_tokens + summary_tokens, ppo_flops),
        ("reward-model BT update", t_rm, rm_tokens, rm_flops),
    ]:
        print(f"{name:<28}{seconds:>9.2f}{tokens / seconds:>11.0f}{flops / seconds / 1e9:>10.1f}{flops / seconds / peak:>8.1%}")
    total = t_gen + t_ref + t_ppo + t_rm
    print(f"one co-training step: {total:.1f} s for {args.users} users = {total / args.users:.2f} s per user")


if __name__ == "__main__":
    main()
