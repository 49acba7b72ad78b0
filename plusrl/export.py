"""`plusrl export RUN --out DIR`: a trained run as standard artefacts other code loads without plusrl.

    DIR/README.md                 model card: method, data, config, the run's measured eval numbers
    DIR/summarizer/               PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors)
    DIR/summarizer.json           the summarizer's config and prompt family (how to build its prompt)
    DIR/base_model/               the summarizer's base model, when it is an embedded default
                                  (adapter_config's base_model_name_or_path is then "base_model",
                                  relative to DIR); a hub id or a local path is named as it is
    DIR/reward_model/backbone/    the reward model's backbone and tokenizer (save_pretrained; LoRA merged)
    DIR/reward_model/head.safetensors      the head (VPL: an MLP over [pooled; z], and its user encoder)
    DIR/reward_model/conditioning.json     config and the exact conditioning text, to reproduce scores
    DIR/summaries.json            the run's held-out summaries per dataset (with --summaries)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import yaml
from safetensors.torch import save_file

from plusrl.api import (
    CONDITIONING_FILE,
    EXPORTED_BASE_MODEL,
    EXPORTED_REWARD_MODEL,
    EXPORTED_SUMMARIZER,
    HEAD_FILE,
    SUMMARIZER_FILE,
)
from plusrl.config import ConfigError
from plusrl.io import atomic_dir
from plusrl.methods import method_spec
from plusrl.models.loader import EMBEDDED, load_causal_lm
from plusrl.run_dir import RunDir

RESPONSE_FORMAT = "User: {prompt}\nAssistant: {response}"


def export_run(run_dir: str | Path, out: str | Path, with_summaries: bool = False) -> Path:
    """Write the run's models as standard artefacts into `out` (atomically: all or nothing)."""
    run, out = RunDir(run_dir), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; pick another --out")
    cfg = run.config()

    def write(folder: Path) -> None:
        metrics = _reward_model(run, folder / EXPORTED_REWARD_MODEL)
        if method_spec(cfg.method).has_summarizer:
            _summarizer(run, cfg, folder)
        if with_summaries:
            (folder / "summaries.json").write_text(json.dumps(_summaries(run), indent=2))
        (folder / "README.md").write_text(_model_card(run, cfg, metrics))

    atomic_dir(out, write)
    return out


def _reward_model(run: RunDir, folder: Path) -> dict:
    model = run.reward_model()
    backbone = model.backbone.merge_and_unload() if model.config.lora_rank > 0 else model.backbone
    backbone.save_pretrained(folder / "backbone")
    model.tokenizer.save_pretrained(folder / "backbone")
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("backbone.")},
              folder / HEAD_FILE)
    config = {k: v for k, v in asdict(model.config).items() if k not in ("backbone", "lora_rank", "lora_alpha")}
    card = {
        "config": config,
        "conditioning_template": model.config.summary_template,
        "response_format": RESPONSE_FORMAT,
        "how_to_score": (
            "Tokenize (conditioning_template.format(summary=...), response_format.format(prompt=..., "
            "response=...)) as a text pair, truncated longest-first to max_length; pool the backbone's last "
            "hidden state (mean over tokens for encoders, last token for decoders); reward = head(pooled) "
            "+ similarity_weight * cos(mean-pooled embedding of the conditioning text alone, mean-pooled "
            "embedding of the response alone). Without a summary: the response_format text alone, no "
            "similarity term. With guidance_weight w != 1: w * reward + (1 - w) * the mean reward of the "
            "response under each of guidance_population's texts (as conditioning)."),
        "guidance_weight": model.guidance_weight,
        "guidance_population": model.population,
    }
    (folder / CONDITIONING_FILE).write_text(json.dumps(card, indent=2))
    return card


def _summarizer(run: RunDir, cfg, folder: Path) -> None:
    summarizer = run.summarizer()
    if summarizer.config.lora_rank == 0:
        raise ConfigError(f"{run.path}: the summarizer was fully fine-tuned (lora_rank=0); only LoRA summarizers "
                          "export as adapters")
    adapter = folder / EXPORTED_SUMMARIZER
    summarizer.lm.save_pretrained(adapter)
    summarizer.tokenizer.save_pretrained(adapter)
    base = summarizer.config.model
    if base in EMBEDDED:  # no hub id to point at: ship the base model beside the adapter
        load_causal_lm(base).save_pretrained(folder / EXPORTED_BASE_MODEL)
        summarizer.tokenizer.save_pretrained(folder / EXPORTED_BASE_MODEL)
        base = EXPORTED_BASE_MODEL
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    adapter_config["base_model_name_or_path"] = base
    (adapter / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    (folder / SUMMARIZER_FILE).write_text(json.dumps(
        {"config": asdict(summarizer.config), "prompts": cfg.data.prompts,
         "note": "the prompt is plusrl.data.prompts.summarizer_prompt(context_text(user, prompts), prompts, "
                 "config.instruction, config.instruction_text) in the tokenizer's chat template, followed by "
                 "config.summary_start; generation is greedy"}, indent=2))


def _summaries(run: RunDir) -> dict[str, dict[str, str]]:
    """{dataset: {user_id: summary}} from the run's held-out predictions."""
    out = {}
    for path in sorted(run.eval_dir.glob("*.predictions.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        out[path.name.removesuffix(".predictions.jsonl")] = {r["user_id"]: r["summary"] for r in rows if r["summary"]}
    return out


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.1f} %"


def _model_card(run: RunDir, cfg, reward_card: dict) -> str:
    spec = method_spec(cfg.method)
    results = [json.loads(p.read_text()) for p in sorted(run.eval_dir.glob("*.json"))]
    checks = {p.stem: json.loads(p.read_text()) for p in sorted(run.checks_dir.glob("*.json"))}
    lines = [
        f"# plusrl {cfg.method}: {spec.description}",
        "",
        f"Trained by plusrl on `{cfg.data.dataset}` ({cfg.data.context_type} contexts), seed {cfg.seed}; "
        f"exported from `{run.path}` (checkpoint `{run.checkpoint().name}`).",
        "",
        "## Held-out results of this run",
        "",
        "| dataset | accuracy | pairs | readable summaries |",
        "|---|---|---|---|",
        *(f"| {r['dataset']} | {100 * r['accuracy']:.1f} % | {r['n_pairs']} | {_percent(r.get('readable_summaries'))} |"
          for r in results),
        "",
        *(f"- {name}: {json.dumps(value)}" for name, value in checks.items()),
        "",
        "## Use",
        "",
        "```python",
        "from plusrl import PersonalizedRewardModel, Summarizer",
        "summarizer = Summarizer.from_pretrained(\"THIS_FOLDER\")",
        "reward_model = PersonalizedRewardModel.from_pretrained(\"THIS_FOLDER\")",
        "```",
        "",
        "Without plusrl: the summarizer is a PEFT adapter (`PeftModel.from_pretrained(base, \"summarizer\")`);",
        "the reward model is `reward_model/backbone` (transformers) plus `reward_model/head.safetensors`,",
        "scored as `reward_model/conditioning.json` says:",
        "",
        f"> {reward_card['how_to_score']}",
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(yaml.safe_load(run.config_file.read_text()), sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
