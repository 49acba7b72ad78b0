"""Dropout at a CPU's speed: the same Bernoulli masks as `torch.nn.Dropout`, drawn 16 random bits a
time instead of one generator call per element.

On a CPU, torch draws a dropout mask with one call into its generator per element, and MiniLM-L6's
masks (the attention's probabilities and two hidden states a layer) then take 15 % of the reward
model's training step on Pets' 70-token rows, 2.7 times what the mask's arithmetic needs
(docs/performance.md). Here one 64-bit draw gives the coin flips of four elements: an element is kept
when its 16 bits, read as a signed integer, reach −32768 + round(p · 65536), so p is kept to within
1/65536 of what the model asks (0.1 → 0.100006). Draws come from torch's default generator, so
`torch.manual_seed` fixes them as it fixes torch's own.

`use_cpu_dropout(model)` swaps a transformers model's dropout modules and, through transformers'
AttentionInterface, the dropout of its attention probabilities; in evaluation, and on any device but
a CPU, both fall back to torch's own (on a GPU its fused kernels are faster).
"""

from __future__ import annotations

import torch
from torch import nn

ATTENTION = "sdpa_cpu_dropout"
"""The attention implementation's registered name: sdpa, except for training-mode dropout on a CPU."""


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A bool mask, True with probability 1 − p (to within 1/65536), from ⌈n/4⌉ 64-bit draws."""
    n = shape.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    bits = words.view(torch.int16)[:n].view(shape)
    return bits >= -(2**15) + round(p * 2**16)


def cpu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`torch.nn.functional.dropout` with `keep_mask`'s draws on a CPU: kept elements scaled by 1/(1 − p)."""
    if not training or p == 0.0 or x.device.type != "cpu":
        return nn.functional.dropout(x, p, training)
    return x * keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))


class CpuDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def sdpa_with_cpu_dropout(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention as transformers' sdpa computes it; with dropout on a CPU, the product spelled out so
    the probabilities' mask comes from `keep_mask` (torch's own sdpa takes this same unfused path with
    dropout on a CPU). `attention_mask` is sdpa's: True where a query may attend a key (or added to the
    scores, if float), or None."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if dropout == 0.0 or query.device.type != "cpu" or getattr(module, "is_causal", False):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    scores = torch.matmul(query, key.transpose(2, 3)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:  # an additive mask (0 where attended)
        scores = scores + attention_mask
    probabilities = cpu_dropout(scores.softmax(-1), dropout)
    return torch.matmul(probabilities.to(value.dtype), value).transpose(1, 2).contiguous(), None


def use_cpu_dropout(model) -> None:
    """Draw a transformers model's dropout masks with `keep_mask` (its modules and its attention's)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:  # in the mode it was in (from_pretrained leaves a model in eval)
                setattr(parent, name, CpuDropout(child.p, child.inplace).train(child.training))
    config = model.config
    attention_dropout = getattr(config, "attention_probs_dropout_prob", None) or getattr(config, "attention_dropout", 0)
    if config._attn_implementation == "sdpa" and attention_dropout:
        AttentionInterface.register(ATTENTION, sdpa_with_cpu_dropout)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
        model.set_attn_implementation(ATTENTION)  # its masks are sdpa's: registered under its name too
