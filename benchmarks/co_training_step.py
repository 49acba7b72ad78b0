"""Throughput of the PLUS co-training step, phase by phase, as MFU of this machine's measured
peak, side by side with TRL's GRPOTrainer doing the same summarizer work.

    python benchmarks/co_training_step.py [--users 16] [--group 4] [--summary-tokens 24]
                                          [--minibatch 16] [--iterations 3] [--peer trl|none]
                                          [--precision fp32,bf16] [--summarizer M] [--reward-model M]
                                          [--dataset D] [--rm-max-length N] [--rm-disable-dropout]
    python benchmarks/co_training_step.py --recipe recipes/pets/plus.yaml [--iterations 4]
                                          [--precision fp32] [KEY=VALUE ...]

It first says what it ran on (CPU model, the kernel level torch runs at, torch version, threads)
and what `precision: auto` resolves to there, so figures from different machines compare. To
see how another CPU kind behaves on this one, cap oneDNN's kernels: ONEDNN_MAX_CPU_ISA=AVX512_CORE
(AVX-512 without BF16: bf16 emulated) or ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2.

`--recipe` times a recipe's own co-training iterations instead (its notes, similarity term,
reward-model passes, KL and replay, with KEY=VALUE overrides as `plusrl train` takes them): every
iteration moves the summarizer, nothing is evaluated, and the reading warm-up, when the recipe has
one, is timed once before them. This is how to see what a recipe change costs on this machine
without a full run (there is no TRL peer in this mode).

`--summarizer qwen2.5-coder-0.5b --reward-model qwen2.5-coder-0.5b` times the paper's model family
(embedded, optional) in place of SmolLM2-135M and MiniLM-L6, and the peak memory is printed.

Measures in the same run, once per precision asked for:
1. the matmul peak (fp32: best of 5 timings, before and after the loop; bf16: one timing,
   as it is only there to tell whether this CPU runs bf16 fast); MFU is against the highest;
2. plusrl: the real `train_plus` loop (RLOO, `group` summaries per user, no reference pass)
   for a few iterations on Pets users with the embedded models; the first iteration is
   warm-up, the rest are averaged from the loop's own per-phase timings and token counts;
3. TRL: GRPOTrainer on the same summarizer (SmolLM2-135M + the same LoRA), the same
   prompts, group size, summary length, sampling temperature and reward (our reward model
   behind a reward function, Eq. 4), β = 0, no gradient checkpointing, and the same
   minibatch of `minibatch` summaries per forward/backward (TRL accumulates them into one
   optimizer step per generation round; one batch of 64 whole sequences runs out of 24 GB
   under TRL). TRL trains the
   summarizer only, so the comparison is on the summarizer's part of a step
   (generate + reward + policy update) in summary tokens per second.

FLOPs count 2·N per token for a forward pass and 2·N more for the activation gradients of a
backward pass, plus 2·N for weight gradients where every weight trains (N = non-embedding
parameters plus the LM head where logits are computed; LoRA adapters, being tiny, and
attention scores are left out). Reward-model tokens are those of the (conditioning, response) rows;
the similarity term's own passes over conditioning texts and responses (a recipe's similarity_weight)
are left out, so its MFU reads low there.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from plusrl.config import from_dict, load_config
from plusrl.data.registry import load_split
from plusrl.models.loader import load_causal_lm
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.models.summarizer import Summarizer, SummarizerConfig
from plusrl.training.configs import PlusConfig
from plusrl.training.plus import train_plus
from plusrl.training.precision import cpu_kernels, cpu_model, resolve_precision


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5, trials: int = 5) -> float:
    """Best of `trials` timings: a peak is a maximum, and one short timing on a shared 2-core
    machine can read 25 % low, which would inflate every MFU below."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(non-embedding parameters, LM-head parameters) of a backbone."""
    body = head = 0
    for name, p in model.named_parameters():
        if "lora_" in name or "embed" in name:
            continue
        if "lm_head" in name:
            head += p.numel()
        else:
            body += p.numel()
    if head == 0 and hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None:
        head = model.get_output_embeddings().weight.numel()  # tied to the input embeddings
    return body, head


def run_plusrl(args, workdir: Path, precision: str) -> list[dict]:
    cfg = recipe_config(args, workdir, precision) if args.recipe else from_dict(PlusConfig, {
        "method": "plus", "output_dir": str(workdir), "iterations": args.iterations, "precision": precision,
        "rollout_batch_size": args.users, "rm_optim": {"batch_size": args.minibatch, "epochs": 1},
        "save_every": 10**6, "sample_every": 10**6,
        "data": {"dataset": args.dataset, "eval_datasets": []},
        "summarizer": {"model": args.summarizer, "max_summary_tokens": args.summary_tokens,
                       "temperature": args.temperature},
        "reward_model": {"backbone": args.reward_model, "max_length": args.rm_max_length,
                         "disable_dropout": args.rm_disable_dropout},
        "ppo": {"advantage_estimator": "rloo", "group_size": args.group, "kl_coef": 0.0,
                "minibatch_size": args.minibatch, "actor_lr": 1e-4},
    })
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # one process, several precisions: a fresh state each
    run_dir = train_plus(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows


def recipe_config(args, workdir: Path, precision: str) -> PlusConfig:
    """The recipe with its overrides, cut to `iterations` in which the summarizer moves, unevaluated."""
    return load_config(PlusConfig, args.recipe, [
        *args.overrides, f"iterations={args.iterations}", "freeze_summarizer_iterations=0",
        "data.eval_datasets=[]", "data.calibration_datasets=[]", f"save_every={10**6}", f"sample_every={10**6}",
        f"output_dir={workdir}", f"precision={precision}"])


def run_trl(args, records, summarizer: Summarizer, reward_model: RewardModel, precision: str) -> list[dict]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from plusrl.data.prompts import (
        context_text,
        strip_summary_header,
        summarizer_prompt,
    )
    from plusrl.models.conditioning import build_conditionings
    from plusrl.training.losses import summary_return

    rows = [{"prompt": [{"role": "user", "content": summarizer_prompt(context_text(r, "pets"), "pets")}],
             "index": i} for i, r in enumerate(records)]

    @torch.no_grad()
    def plus_reward(prompts, completions, index, **_):  # Eq. 4 from our summary-conditioned RM
        batch = [records[i] for i in index]
        summaries = [strip_summary_header(c[0]["content"]) for c in completions]
        enc = reward_model.encode_pairs(batch, build_conditionings("plus", batch, "pets", summaries))
        rewards = reward_model(enc)
        return summary_return(rewards[: len(batch)], rewards[len(batch):]).tolist()

    class StepClock(TrainerCallback):
        def __init__(self):
            self.started, self.seconds = 0.0, []

        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.seconds.append(time.perf_counter() - self.started)

    clock = StepClock()
    n_completions = args.users * args.group
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(), use_cpu=True, bf16=precision == "bf16", report_to="none", save_strategy="no",
        max_steps=args.iterations, per_device_train_batch_size=args.minibatch,
        gradient_accumulation_steps=n_completions // args.minibatch, num_generations=args.group,
        max_completion_length=args.summary_tokens, temperature=args.temperature, beta=0.0, learning_rate=1e-4,
        gradient_checkpointing=False, logging_steps=1, disable_dropout=True,
    )
    lora = LoraConfig(r=summarizer.config.lora_rank, lora_alpha=summarizer.config.lora_alpha,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    base = load_causal_lm(summarizer.config.model)  # the same SmolLM2 weights, fresh adapters from TRL
    trainer = GRPOTrainer(model=base, reward_funcs=plus_reward, args=config, train_dataset=Dataset.from_list(rows),
                          processing_class=summarizer.tokenizer, peft_config=lora, callbacks=[clock])
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return [{"seconds": s, "summary_tokens": n * n_completions} for s, n in zip(clock.seconds, lengths)][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--summary-tokens", type=int, default=24)
    parser.add_argument("--temperature", type=float, default=0.3)
    parser.add_argument("--minibatch", type=int, default=16, help="summaries per update step (the recipe's)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--peer", choices=["trl", "none"], default="trl")
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--summarizer", default="smollm2-135m", help="e.g. qwen2.5-coder-0.5b (the paper's family)")
    parser.add_argument("--reward-model", default="minilm-l6", help="backbone, e.g. qwen2.5-coder-0.5b")
    parser.add_argument("--dataset", default="pets", help="whose users, e.g. data/dsp (real text, long answers)")
    parser.add_argument("--rm-max-length", type=int, default=128,
                        help="reward-model tokens per input (DSP recipe: 256)")
    parser.add_argument("--rm-disable-dropout", action="store_true",
                        help="train the reward model without dropout (reward_model.disable_dropout)")
    parser.add_argument("--recipe", help="time this recipe's co-training iterations (e.g. recipes/pets/plus.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, with --recipe")
    args = parser.parse_args()
    if args.peer == "trl" and args.dataset != "pets":
        parser.error("the TRL comparison runs on pets users: add --peer none for another dataset")
    if args.recipe:
        if args.peer == "trl":
            parser.error("--recipe times plusrl alone: add --peer none")
        cfg = load_config(PlusConfig, args.recipe, args.overrides)
        args.users, args.group = cfg.rollout_batch_size, cfg.ppo.group_size
        args.summarizer, args.reward_model = cfg.summarizer.model, cfg.reward_model.backbone
        args.rm_max_length = cfg.reward_model.max_length
    elif args.overrides:
        parser.error("KEY=VALUE overrides go with --recipe")

    auto = resolve_precision("auto", torch.device("cpu"))
    print(f"CPU: {cpu_model()}; kernels: {cpu_kernels()}; torch {torch.__version__}; threads={torch.get_num_threads()}")
    print(f"precision auto → {auto.name} ({auto.reason})")
    peak_fp32, peak_bf16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16, n=512, repeats=2, trials=1)
    print(f"matmul peak before: fp32 {peak_fp32 / 1e9:.1f} GFLOP/s, bf16 {peak_bf16 / 1e9:.1f} GFLOP/s")
    summarizer = Summarizer(SummarizerConfig(model=args.summarizer, max_summary_tokens=args.summary_tokens))
    reward_model = RewardModel(RewardModelConfig(backbone=args.reward_model, max_length=args.rm_max_length)).eval()
    body, head = parameter_counts(summarizer.lm)
    rm_body, _ = parameter_counts(reward_model.backbone)
    for precision in args.precision.split(","):
        with tempfile.TemporaryDirectory() as workdir:
            rows = run_plusrl(args, Path(workdir), precision)
        # Measured again after the loop, so that MFU is against the best the machine showed in this run.
        peak = max(peak_fp32, matmul_peak(torch.float32), peak_bf16)
        print(f"\n== {precision}: summarizer {args.summarizer}, reward model {args.reward_model} "
              f"(MFU against {peak / 1e9:.1f} GFLOP/s; process peak memory so far "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB)")
        ours, summary_tokens = report_plusrl(args, rows, body, head, rm_body, peak)
        if args.peer == "trl":
            trl_rows = run_trl(args, load_split("pets", "train")[: args.users], summarizer, reward_model, precision)
            trl_seconds = statistics.mean(r["seconds"] for r in trl_rows)
            trl_tokens = statistics.mean(r["summary_tokens"] for r in trl_rows)
            print(f"TRL GRPOTrainer, same work, {precision} ({len(trl_rows)} timed steps): {trl_seconds:.1f} s per step, "
                  f"{trl_tokens / trl_seconds:.0f} summary tokens/s")
            print(f"plusrl / TRL summary tokens/s, {precision}: {(summary_tokens / ours) / (trl_tokens / trl_seconds):.2f}×")


def report_plusrl(args, all_rows: list[dict], body: int, head: int, rm_body: int, peak: float) -> tuple[float, float]:
    """Print plusrl's per-phase table; return the seconds and summary tokens of the summarizer's part."""
    rows = all_rows[1:]  # the first iteration warms up allocators and kernels

    def mean(key):
        return statistics.mean(r.get(key, 0.0) for r in rows)

    if "time/reading_warmup" in all_rows[0]:
        print(f"reading warm-up, once before co-training: {all_rows[0]['time/reading_warmup']:.1f} s")

    prompt_tokens, summary_tokens, rm_tokens = mean("tokens/prompt"), mean("tokens/summary"), mean("tokens/reward_model")
    phases = [  # name, seconds, tokens, FLOPs
        ("generate + reward", mean("time/generate_and_score"), prompt_tokens + summary_tokens,
         2 * body * (prompt_tokens + summary_tokens) + 2 * head * summary_tokens + 2 * rm_body * rm_tokens),
        ("reference (KL)", mean("time/reference"), prompt_tokens + summary_tokens,
         2 * body * (prompt_tokens + summary_tokens) + 2 * head * summary_tokens),
        ("summarizer RLOO update", mean("time/summarizer_update"), summary_tokens, 4 * (body + head) * summary_tokens),
        ("reward-model BT update", mean("time/reward_model_update"), rm_tokens, 6 * rm_body * rm_tokens),
    ]
    print(f"plusrl, per iteration ({len(rows)} timed): {args.users} users × {args.group} summaries, "
          f"prompt tokens {prompt_tokens:.0f}, summary tokens {summary_tokens:.0f}, RM tokens {rm_tokens:.0f}")
    print(f"{'phase':<26}{'seconds':>9}{'tokens/s':>11}{'GFLOP/s':>10}{'MFU':>8}")
    for name, seconds, tokens, flops in phases:
        if not seconds:
            continue  # e.g. no reference pass at β = 0
        print(f"{name:<26}{seconds:>9.2f}{tokens / seconds:>11.0f}{flops / seconds / 1e9:>10.1f}{flops / seconds / peak:>8.1%}")
    ours = mean("time/generate_and_score") + mean("time/reference") + mean("time/summarizer_update")
    print(f"summarizer part of a step: {ours:.1f} s = {summary_tokens / ours:.0f} summary tokens/s; "
          f"whole co-training step {sum(p[1] for p in phases):.1f} s")
    return ours, summary_tokens


if __name__ == "__main__":
    main()
