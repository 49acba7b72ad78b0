"""The summarizer π_θ: a causal LM that reads a user's context and writes a summary z.

It is the PPO actor; a value head on its last hidden state is the critic (sharing the trunk
halves the cost on a CPU; OpenRLHF uses a separate critic model). LoRA adapters are the
trained weights, and the frozen reference policy is the same network with adapters off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plusrl.data.prompts import context_text, strip_summary_header, summarizer_prompt
from plusrl.data.schema import Record
from plusrl.models.persistence import TrainedWeights
from plusrl.models.loader import load_causal_lm, load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class SummarizerConfig:
    model: str = "smollm2-135m"
    """Embedded name, local folder or Hugging Face id of a chat causal LM."""
    max_prompt_tokens: int = 512
    """Summarizer window for the prompt; the oldest context items are dropped to fit."""
    max_summary_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    lora_rank: int = 16
    """0 fine-tunes every weight."""
    lora_alpha: int = 32


@dataclass
class Rollout:
    """Generated summaries with everything PPO needs, right-padded over summary tokens."""

    prompt_ids: torch.Tensor  # [B, P] left-padded
    prompt_mask: torch.Tensor
    summary_ids: torch.Tensor  # [B, T] right-padded
    summary_mask: torch.Tensor  # 1 on real summary tokens (EOS included)
    logprobs: torch.Tensor  # [B, T] log π_old(z_t | ·)
    values: torch.Tensor  # [B, T] V(state before z_t)
    texts: list[str]


class Summarizer(TrainedWeights, nn.Module):
    weights_file = "summarizer.safetensors"
    config_file = "summarizer.json"
    config_class = SummarizerConfig

    def __init__(self, config: SummarizerConfig):
        super().__init__()
        self.config = config
        self.tokenizer = load_tokenizer(config.model)
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        lm = load_causal_lm(config.model)
        lm.generation_config.pad_token_id = self.tokenizer.pad_token_id
        if config.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules="all-linear",
                              task_type="CAUSAL_LM")
            lm = get_peft_model(lm, lora)
        self.lm = lm
        hidden = lm.config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.n_context_truncated = 0
        self.mark_trained_weights()

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    # -- prompts -------------------------------------------------------------------------

    def _chat(self, text: str) -> list[int]:
        messages = [{"role": "user", "content": text}]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def prompt_ids(self, record: Record, dataset: str) -> list[int]:
        """Chat-formatted summarizer prompt; drops the oldest context items until it fits."""
        if not record.context:
            raise ValueError(f"user {record.user_id}: empty context, nothing to summarize")
        items = list(record.context)
        while True:
            shown = record.model_copy(update={"context": items})
            ids = self._chat(summarizer_prompt(context_text(shown, dataset), dataset))
            if len(ids) <= self.config.max_prompt_tokens:
                return ids
            if len(items) == 1:
                # one item alone is too long: keep its most recent tokens
                self.n_context_truncated += 1
                return ids[-self.config.max_prompt_tokens :]
            items = items[1:]
            self.n_context_truncated += 1

    def batch_prompts(self, records: list[Record], dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [self.prompt_ids(r, dataset) for r in records]
        width = max(map(len, seqs))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
        return ids.to(self.device), mask.to(self.device)

    # -- generation ----------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, sample: bool = True) -> Rollout:
        """Sample summaries; log π_old and values come from the forward pass of `policy_forward`."""
        was_training = self.training
        self.eval()
        out = self.lm.generate(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            max_new_tokens=self.config.max_summary_tokens,
            do_sample=sample,
            temperature=self.config.temperature if sample else None,
            top_p=self.config.top_p if sample else None,
            top_k=None,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        summary_ids = out[:, prompt_ids.shape[1] :]
        summary_mask = _mask_after_eos(summary_ids, self.tokenizer.eos_token_id)
        summary_ids = summary_ids.masked_fill(summary_mask == 0, self.tokenizer.pad_token_id)
        logprobs, values = self.policy_forward(prompt_ids, prompt_mask, summary_ids, summary_mask)
        self.train(was_training)
        texts = [
            strip_summary_header(self.tokenizer.decode(ids[m.bool()], skip_special_tokens=True))
            for ids, m in zip(summary_ids, summary_mask)
        ]
        return Rollout(prompt_ids, prompt_mask, summary_ids, summary_mask, logprobs, values, texts)

    def policy_forward(
        self, prompt_ids, prompt_mask, summary_ids, summary_mask, use_adapter: bool = True, with_values: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log π(z_t | c, z_<t) and V at each summary position, in one pass over prompt + summary."""
        ids = torch.cat([prompt_ids, summary_ids], dim=1)
        mask = torch.cat([prompt_mask, summary_mask], dim=1)
        positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding: real tokens start at 0
        n_summary = summary_ids.shape[1]

        def run():
            return self.lm(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=with_values,
                           logits_to_keep=n_summary + 1)

        if use_adapter or self.config.lora_rank == 0:
            out = run()
        else:
            with self.lm.disable_adapter():
                out = run()
        logits = out.logits[:, :-1].float()  # position t predicts summary token t
        logprobs = torch.gather(F.log_softmax(logits, dim=-1), 2, summary_ids.unsqueeze(-1)).squeeze(-1)
        values = None
        if with_values:
            hidden = out.hidden_states[-1][:, -(n_summary + 1) : -1]
            values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()
        return logprobs, values

    def forward(self, prompt_ids, prompt_mask, summary_ids, summary_mask):
        """Training pass (through DDP when distributed): log-probs and values of the summary tokens."""
        return self.policy_forward(prompt_ids, prompt_mask, summary_ids, summary_mask)

    def summarize(self, records: list[Record], dataset: str, batch_size: int = 16, sample: bool = False) -> list[str]:
        """Summaries for records (greedy by default, for evaluation and serving)."""
        texts = []
        for start in range(0, len(records), batch_size):
            ids, mask = self.batch_prompts(records[start : start + batch_size], dataset)
            texts += self.generate(ids, mask, sample=sample).texts
        return texts



def _mask_after_eos(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 up to and including the first EOS of each row, 0 after it."""
    is_eos = (ids == eos_id).int()
    after_first_eos = (is_eos.cumsum(1) - is_eos) > 0
    return (~after_first_eos).long()
