"""Train a personalized policy with TRL's GRPOTrainer, rewarded by a plusrl run.

    pip install -e ".[bench]"      # TRL
    python examples/trl_grpo_pets.py --run runs/quickstart/plus [--summaries stated|run] [--steps 30]

The policy is the embedded SmolLM2-135M-Instruct with LoRA. Each training row is a Pets prompt
for one of two users, a dogs user and a cats user. The policy sees the user's summary in its
prompt (App. J.1's generator prompt): `--summaries stated` uses the summary each user keeps in
the service ("The user prefers dogs over cats."); `--summaries run` has the run's summarizer
write it from a Pets test user's context. plusrl's reward model scores each completion under
the user's summary, minus its mean score under the other user's (`personalization_margin`: a
completion both users would like, or one that repeats the summary's words, earns nothing).
Before and after training, greedy answers to held-out prompts are checked: the share that
names the user's preferred animal and not the other one.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from plusrl import Summarizer
from plusrl.data.registry import load_split
from plusrl.eval.zero_shot import GENERATOR_SYSTEM, generator_prompt
from plusrl.integrations.trl import PersonalizedReward
from plusrl.models.loader import resolve

TRAIN_PROMPTS = ["Please talk about one kind of pets.", "Tell me a fun fact about a pet.",
                 "What is an interesting thing about household pets?", "Share something surprising about an animal "
                 "people keep at home."]
HELD_OUT_PROMPTS = ["Can you describe a pet you find fascinating?", "Give me one fact about a common pet.",
                    "Write a sentence about a popular pet animal.", "What should I know about pets?"]
ANIMALS = {"dogs": re.compile(r"\b(dog|dogs|puppy|puppies)\b", re.I), "cats": re.compile(r"\b(cat|cats|kitten|kittens)\b", re.I)}


STATED_SUMMARIES = {"cats": "The user prefers cats over dogs.", "dogs": "The user prefers dogs over cats."}


def run_summaries(run: str) -> dict[str, str]:
    """One Pets test user of each type, summarized by the run's summarizer."""
    users = {}
    for record in load_split("pets", "test"):
        users.setdefault(record.meta["user_type"], record)
    summarizer = Summarizer.from_pretrained(run, prompts="pets")
    types = sorted(users)
    return dict(zip(types, summarizer.summarize([users[t].model_dump()["context"] for t in types])))


def messages(prompt: str, summary: str) -> list[dict]:
    return [{"role": "system", "content": GENERATOR_SYSTEM}, {"role": "user", "content": generator_prompt(prompt, summary)}]


@torch.no_grad()
def preferred_share(model, tokenizer, summaries: dict[str, str], max_new_tokens: int,
                    samples: int) -> tuple[dict[str, float], list[dict]]:
    """Share of held-out answers naming the user's animal and not the other one: the greedy
    answer, and `samples` answers sampled as in training (T = 1), which show the policy's
    distribution where a 135M model's greedy answer often just repeats its prompt."""
    torch.manual_seed(1234)  # the same draws before and after training
    rows = []
    for user_type, summary in summaries.items():
        other = next(t for t in ANIMALS if t != user_type)
        for prompt in HELD_OUT_PROMPTS:
            ids = tokenizer.apply_chat_template(messages(prompt, summary), add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True).to(model.device)
            greedy = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
            sampled = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=True, temperature=1.0,
                                     top_k=0, num_return_sequences=samples)
            for decoding, out in [("greedy", greedy[0])] + [("sampled", o) for o in sampled]:
                answer = tokenizer.decode(out[ids["input_ids"].shape[1]:], skip_special_tokens=True)
                hit = bool(ANIMALS[user_type].search(answer)) and not ANIMALS[other].search(answer)
                rows.append({"user_type": user_type, "prompt": prompt, "decoding": decoding, "answer": answer,
                             "names_preferred": hit})
    share = {d: sum(r["names_preferred"] for r in rows if r["decoding"] == d) / sum(r["decoding"] == d for r in rows)
             for d in ("greedy", "sampled")}
    return share, rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a plusrl PLUS run folder or `plusrl export` folder")
    parser.add_argument("--summaries", choices=["stated", "run"], default="stated",
                        help="the summary each user keeps in the service, or the run's summary of their context")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--completion-tokens", type=int, default=32)
    parser.add_argument("--eval-samples", type=int, default=4, help="sampled answers per held-out prompt and user")
    parser.add_argument("--out", default="runs/trl-grpo-pets")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    summaries = STATED_SUMMARIES if args.summaries == "stated" else run_summaries(args.run)
    rows = [{"prompt": messages(p, s), "summary": s, "request": p, "user_type": t}
            for t, s in summaries.items() for p in TRAIN_PROMPTS]
    reward = PersonalizedReward(args.run, request_column="request", contrast_summaries=list(summaries.values()))
    policy = resolve("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(policy)
    config = GRPOConfig(output_dir=args.out, max_steps=args.steps, learning_rate=args.lr, per_device_train_batch_size=8,
                        num_generations=4, max_completion_length=args.completion_tokens, temperature=1.0, beta=0.0,
                        logging_steps=1, save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(),
                        bf16=False, seed=0)
    trainer = GRPOTrainer(model=policy, processing_class=tokenizer, reward_funcs=[reward],
                          train_dataset=Dataset.from_list(rows), args=config,
                          peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    model = trainer.model.eval()
    with model.disable_adapter():
        before, before_rows = preferred_share(model, tokenizer, summaries, args.completion_tokens, args.eval_samples)
    trainer.train()
    after, after_rows = preferred_share(trainer.model.eval(), tokenizer, summaries, args.completion_tokens,
                                        args.eval_samples)
    rewards = [log["reward"] for log in trainer.state.log_history if "reward" in log]
    result = {"summaries": summaries, "summary_source": args.summaries, "steps": args.steps, "preferred_share_before": before,
              "preferred_share_after": after, "mean_reward_first_steps": rewards[:3], "mean_reward_last_steps": rewards[-3:],
              "answers_before": before_rows, "answers_after": after_rows}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "result.json").write_text(json.dumps(result, indent=2))
    print(f"held-out answers naming only the user's preferred animal, before → after {args.steps} GRPO steps: "
          + ", ".join(f"{d} {before[d]:.0%} → {after[d]:.0%}" for d in before) + f"; reward {rewards[:1]} → {rewards[-1:]}")
    return result


if __name__ == "__main__":
    main()
