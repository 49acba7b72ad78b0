"""Reward model = any Hugging Face backbone (encoder or decoder) + a linear head.

It scores `[conditioning] + prompt + response`, where the conditioning part is what makes a
method: nothing (BTL), the oracle text (Oracle), the raw context (ICL) or a summary (PLUS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from plusrl.models.persistence import TrainedWeights
from plusrl.models.loader import load_backbone, load_tokenizer


@dataclass
class RewardModelConfig:
    backbone: str = "minilm-l6"
    """Embedded name (minilm-l6, smollm2-135m), local folder or Hugging Face id."""
    max_length: int = 256
    """Tokens per scored input; longer inputs are truncated (counted and reported)."""
    pooling: str = "auto"
    """auto | mean | last: mean over tokens for encoders, last token for decoders."""
    n_outputs: int = 1
    """1 for a scalar reward; 2 for DPL's mean and log-variance."""
    lora_rank: int = 0
    """0 trains every weight; >0 trains LoRA adapters of that rank plus the head."""
    lora_alpha: int = 32


@dataclass
class EncodedBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    n_truncated: int


def _is_encoder(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)


class RewardModel(TrainedWeights, nn.Module):
    weights_file = "model.safetensors"
    config_file = "reward_model.json"
    config_class = RewardModelConfig

    def __init__(self, config: RewardModelConfig):
        super().__init__()
        self.config = config
        self.tokenizer = load_tokenizer(config.backbone)
        self.tokenizer.padding_side = "right"  # last-token pooling reads position mask.sum()-1
        backbone = load_backbone(config.backbone)
        self.pooling = config.pooling
        if self.pooling == "auto":
            self.pooling = "mean" if _is_encoder(backbone.config) else "last"
        if config.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules="all-linear")
            backbone = get_peft_model(backbone, lora)
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, config.n_outputs)
        nn.init.normal_(self.head.weight, std=1.0 / (backbone.config.hidden_size + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)
        self.mark_trained_weights()

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def encode(self, conditionings: list[str] | None, prompts: list[str], responses: list[str]) -> EncodedBatch:
        """Tokenize (conditioning, prompt + response) pairs; over-long inputs are cut and counted."""
        main = [f"User: {p}\nAssistant: {r}" for p, r in zip(prompts, responses, strict=True)]
        args = (conditionings, main) if conditionings is not None else (main,)
        full_lengths = [len(ids) for ids in self.tokenizer(*args, truncation=False)["input_ids"]]
        batch = self.tokenizer(
            *args, truncation="longest_first", max_length=self.config.max_length, padding=True, return_tensors="pt"
        )
        n_truncated = sum(n > self.config.max_length for n in full_lengths)
        return EncodedBatch(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device), n_truncated)

    def encode_pairs(self, records, conditionings: list[str] | None) -> EncodedBatch:
        """One batch scoring both sides of each pair: chosen responses first, then rejected."""
        return self.encode(
            None if conditionings is None else conditionings + conditionings,
            [r.prompt for r in records] * 2,
            [r.chosen for r in records] + [r.rejected for r in records],
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        else:
            last = attention_mask.sum(1) - 1
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        out = self.head(pooled.to(self.head.weight.dtype))
        return out.squeeze(-1) if self.config.n_outputs == 1 else out

    def score(self, conditionings: list[str] | None, prompts: list[str], responses: list[str]) -> torch.Tensor:
        batch = self.encode(conditionings, prompts, responses)
        return self(batch.input_ids, batch.attention_mask)
