"""The summarizer π_θ: a causal LM that reads a user's context and writes a summary z.

It is the PPO actor; a value head on its last hidden state is the critic (sharing the trunk
halves the cost on a CPU; OpenRLHF uses a separate critic model). LoRA adapters are the
trained weights, and the frozen reference policy is the same network with adapters off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, StaticCache
from transformers.generation.logits_process import TopPLogitsWarper

from plusrl.data.prompts import Instruction, clip_responses, context_text, strip_summary_header, summarizer_prompt
from plusrl.data.schema import Note, Record, UserContext
from plusrl.models.loader import (
    CHARS_PER_TOKEN,
    chat_ids,
    chat_reply,
    chat_text,
    disable_dropout,
    load_causal_lm,
    load_tokenizer,
)
from plusrl.models.persistence import TrainedWeights
from plusrl.progress import SHOW_AFTER_S, progress

log = logging.getLogger(__name__)


@dataclass
class SummarizerConfig:
    model: str = "smollm2-135m"
    """Embedded name, local folder or Hugging Face id of a chat causal LM."""
    max_prompt_tokens: int = 512
    """Summarizer window for the prompt; the oldest context items are dropped to fit."""
    max_response_chars: int = 0
    """Each response in the context keeps only its first N characters (0: all). Long real-text
    answers show their style in the opening lines, and all k past pairs then fit the window."""
    max_summary_tokens: int = 48
    """The most tokens a summary may have; generation stops there if no EOS came first."""
    stop_at_line_end: bool = False
    """End a summary at its first line break after some text, as at EOS (the line break is the
    summary's last token, so RL learns when to stop). A one-statement summary then cannot grow,
    under RL, into repeated statements that fill the token limit ("The user prefers dogs.\n\nThe
    user prefers cats.\n\n…"), a private code whose order carries the preference."""
    stop_at_sentence_end: bool = False
    """End a summary at its first sentence (a token ending in ".", "!" or "?" after some text), or
    its first line, whichever comes first. The statement "The user prefers dogs." then cannot grow
    a tail ("… Dogs are loyal and …") that RL turns into a second channel for the preference.
    Cuts "e.g." or "3.5" short: for one-statement summaries, not descriptions."""
    temperature: float = 1.0
    """Sampling temperature of training rollouts; π_θ's log-probabilities are taken at it too, so
    that PPO's ratio compares the policy that sampled. Evaluation and serving decode greedily."""
    top_p: float = 1.0
    """Nucleus sampling of training rollouts (1: off)."""
    copy_block_tokens: int = 0
    """Greedy summaries (evaluation, serving, restating) never repeat this many tokens in a row
    from their prompt (0: off), as summarization systems block repeated n-grams. Training rollouts
    are sampled without the block: PPO's ratio is taken against the unconstrained policy. Off in
    the recipes: where the Pets summarizer runs its statement on into a copied context fact, the
    block makes it write the fact with a word changed ("… Birds bob their heads to judge
    distance."), not stop (docs/experiments.md)."""
    lora_rank: int = 16
    """0 fine-tunes every weight."""
    lora_alpha: int = 32
    """LoRA scale α (the update is α/r · BA)."""
    summary_start: str = ""
    """Words the summary starts with, written after the prompt's assistant turn opens (e.g. "The user
    prefers"): the model continues them, and they are part of the summary the reward model reads.
    Empty: the model starts as it likes (the paper's prompt asks for "##Summary")."""
    instruction: Instruction = "paper"
    """paper: App. I.1's request for a short summary; stated: a request for the preference itself
    ("… which kind of pet does the user prefer? Answer … 'The user prefers X.'"), which a person
    can read and edit; contrast: the same with what it is preferred over ("'The user prefers X over
    Y.'"), as the Oracle's text states it (plusrl.data.prompts)."""
    instruction_text: str = ""
    """Your own words in place of the named instruction, written after the user's context (end
    with "Start your response with ##Summary" to have that header stripped). Empty: `instruction`."""

    def __post_init__(self):
        if self.copy_block_tokens == 1 or self.copy_block_tokens < 0:
            raise ValueError(f"copy_block_tokens must be 0 (off) or at least 2 (1 would ban every prompt token), "
                             f"not {self.copy_block_tokens}")


@dataclass
class PromptPrefix:
    """KV cache of prompts (in `batch_prompts` layout) minus their last token, computed once per context.

    Every summary of a context continues from it: generation, the PPO passes and the reference
    pass each feed only [last prompt token, summary tokens], so a prompt costs one forward
    pass per policy instead of one per pass per summary.
    """

    keys_values: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [n_prompts, heads, P-1, d]
    prompt_mask: torch.Tensor  # [n_prompts, P]
    last_ids: torch.Tensor  # [n_prompts, 1] the last prompt token (the chat template's "assistant\n")

    def cache(self, rows: torch.Tensor, config) -> DynamicCache:
        """A fresh cache holding the prefixes of `rows` (prompt index per summary)."""
        return DynamicCache(ddp_cache_data=[(k[rows], v[rows]) for k, v in self.keys_values], config=config)


@dataclass
class Rollout:
    """Sampled summaries with everything PPO needs, right-padded over summary tokens.

    Row i is a summary of prompt `prompt_index[i]`; with a group size k, each prompt has k rows.
    """

    prefix: PromptPrefix
    prompt_index: torch.Tensor  # [B]
    summary_ids: torch.Tensor  # [B, T]
    summary_mask: torch.Tensor  # 1 on real summary tokens (EOS included)
    logprobs: torch.Tensor  # [B, T] log π_old(z_t | ·), taken while sampling
    values: torch.Tensor | None  # [B, T] V(state before z_t), taken while sampling
    texts: list[str]
    cut_at_limit: torch.Tensor  # [B] bool: ran to max_summary_tokens without ending (EOS or a final line break)


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
        if config.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules="all-linear",
                              task_type="CAUSAL_LM")
            lm = get_peft_model(lm, lora)
        self.lm = lm
        disable_dropout(lm)  # PPO's ratio π_θ/π_old assumes the net that sampled is the net that trains
        hidden = lm.config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.n_context_truncated = 0
        self.autocast_dtype: torch.dtype | None = None
        """bf16 for a run trained under bf16 autocast (set by RunDir.summarizer): `summarize` writes
        in the precision the policy was trained in, and ~3x faster on CPUs with AVX-512 BF16."""
        self.mark_trained_weights()

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    # -- prompts -------------------------------------------------------------------------

    def _chat(self, text: str) -> list[int]:
        ids = chat_ids(self.tokenizer, chat_text(self.tokenizer, [{"role": "user", "content": text}]))
        return ids + self.tokenizer.encode(self.config.summary_start, add_special_tokens=False)

    def prompt_ids(self, record: Record, dataset: str) -> list[int]:
        """Chat-formatted summarizer prompt; drops the oldest context items until it fits.

        Only the newest items within max_prompt_tokens * CHARS_PER_TOKEN characters are ever
        tokenized, so the cost is bounded whatever the size of the stored context.
        """
        if not record.context:
            raise ValueError(f"user {record.user_id}: empty context, nothing to summarize")
        budget = self.config.max_prompt_tokens * CHARS_PER_TOKEN
        context = record.context
        if self.config.max_response_chars:
            context = [clip_responses(item, self.config.max_response_chars) for item in context]
        items, size = [], 0
        for item in reversed(context):
            size += len(item.model_dump_json())
            if items and size > budget:
                break
            items.append(item)
        items.reverse()
        self.n_context_truncated += len(context) - len(items)
        while True:
            shown = record.model_copy(update={"context": items})
            context = context_text(shown, dataset)
            ids = self._chat(summarizer_prompt(context[-budget:], dataset, self.config.instruction,
                                               self.config.instruction_text))
            if len(ids) <= self.config.max_prompt_tokens:
                return ids
            if len(items) == 1:
                # one item alone is too long: keep its most recent tokens
                self.n_context_truncated += 1
                return ids[-self.config.max_prompt_tokens :]
            items = items[1:]
            self.n_context_truncated += 1

    def batch_prompts(self, records: list[Record], dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt token ids and mask, every row ending in the last column. The head all prompts share
        (the chat template's system turn, and any words before the context) stands first in every
        row, each row's padding after it, so that `prefill` encodes that head once for the batch."""
        seqs = [self.prompt_ids(r, dataset) for r in records]
        width = max(map(len, seqs))
        head = _shared_head_length(seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([s[:head] + [pad] * (width - len(s)) + s[head:] for s in seqs])
        mask = torch.tensor([[1] * head + [0] * (width - len(s)) + [1] * (len(s) - head) for s in seqs])
        return ids.to(self.device), mask.to(self.device)

    def target_ids(self, summaries: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded token ids (and mask) of summaries as this summarizer would write them: after
        `summary_start` (which the prompt already holds), ending with the end-of-turn token."""
        start = self.config.summary_start
        rows = []
        for text in summaries:
            if not text.startswith(start):
                raise ValueError(f"a target summary must start with summary_start={start!r}: {text!r}")
            rows.append(self.tokenizer.encode(text[len(start):], add_special_tokens=False) + [self.tokenizer.eos_token_id])
        width = max(map(len, rows))
        ids = torch.tensor([row + [self.tokenizer.pad_token_id] * (width - len(row)) for row in rows])
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
        return ids.to(self.device), mask.to(self.device)

    # -- generation and scoring, continuing from a shared prompt prefix ----------------------

    def _adapter(self, enabled: bool):
        return contextlib.nullcontext() if enabled or self.config.lora_rank == 0 else self.lm.disable_adapter()

    @torch.no_grad()
    def prefill(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, use_adapter: bool = True) -> PromptPrefix:
        """The KV cache of each prompt but its last token. Leading columns every row holds alike (the
        shared head `batch_prompts` puts first) are encoded once, for one row, and every row reads
        them from there: the same attention, a fifth of a Pets rollout's prompt tokens fewer."""
        positions = (prompt_mask.cumsum(1) - 1).clamp(min=0)  # real tokens count from 0, over any padding
        n_rows, n_prefilled = prompt_ids.shape[0], prompt_ids.shape[1] - 1
        head = min(_shared_columns(prompt_ids, prompt_mask), n_prefilled)
        cache = None
        with self._adapter(use_adapter):
            if head:
                cache = self.lm(input_ids=prompt_ids[:1, :head], position_ids=positions[:1, :head], use_cache=True,
                                logits_to_keep=1).cache
                cache = DynamicCache(ddp_cache_data=[(layer.keys.expand(n_rows, -1, -1, -1),
                                                      layer.values.expand(n_rows, -1, -1, -1)) for layer in cache.layers],
                                     config=self.lm.config)
            if head < n_prefilled:
                cache = self.lm(input_ids=prompt_ids[:, head:n_prefilled], attention_mask=prompt_mask[:, :n_prefilled],
                                position_ids=positions[:, head:n_prefilled], cache=cache, use_cache=True,
                                logits_to_keep=1).cache
        keys_values = [(layer.keys, layer.values) for layer in cache.layers]
        return PromptPrefix(keys_values, prompt_mask, prompt_ids[:, -1:])

    def continue_from(
        self, prefix: PromptPrefix, rows: torch.Tensor, summary_ids: torch.Tensor, summary_mask: torch.Tensor,
        use_adapter: bool = True, with_values: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log π(z_t | c, z_<t) and V at each summary position, feeding only the summary tokens.

        Gradients stop at the cached prompt prefix (as in prefix-sharing RL trainers): the
        adapters learn from how summary tokens read the prompt, not from how the prompt is
        encoded. It keeps a PPO step at the cost of the summary, not of the whole context.
        """
        inputs = torch.cat([prefix.last_ids[rows], summary_ids[:, :-1]], dim=1)
        prompt_mask = prefix.prompt_mask[rows]
        mask = torch.cat([prompt_mask, summary_mask[:, :-1]], dim=1)
        positions = prompt_mask.sum(1, keepdim=True) - 1 + torch.arange(inputs.shape[1], device=inputs.device)
        with self._adapter(use_adapter):
            hidden = self.lm.get_decoder()(input_ids=inputs, attention_mask=mask, position_ids=positions,
                                           cache=prefix.cache(rows, self.lm.config)).last_hidden_state
            # (h / T) W = logits / T: the temperature is applied on the 576-wide hidden state, not the 49k logits
            logits = self.lm.get_output_embeddings()(hidden / self.config.temperature)
        logprobs = selected_logprobs(logits.float(), summary_ids)
        return logprobs, self._values(hidden) if with_values else None

    def forward(self, prefix: PromptPrefix, rows: torch.Tensor, summary_ids: torch.Tensor, summary_mask: torch.Tensor):
        """Training pass (through DDP when distributed): log-probs and values of the summary tokens."""
        return self.continue_from(prefix, rows, summary_ids, summary_mask)

    def policy_parameters(self) -> list[nn.Parameter]:
        """The weights π_θ trains (its LoRA adapters, or every weight at lora_rank 0), not the critic's value head."""
        return [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith("value_head")]

    def _log_policy(self, logits: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(logits.float() / self.config.temperature, dim=-1)

    def _values(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()

    @torch.no_grad()
    def generate(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, group: int = 1, sample: bool = True,
                 with_values: bool = True) -> Rollout:
        """`group` summaries per prompt; log π_old and V are read off the sampling pass itself."""
        prefix = self.prefill(prompt_ids, prompt_mask)
        rows = torch.arange(len(prompt_ids), device=self.device).repeat_interleave(group)
        # A static cache is written in place; a dynamic one would copy all rows' prefixes every token
        n_steps = self.config.max_summary_tokens
        cache = StaticCache(config=self.lm.config, max_cache_len=prefix.prompt_mask.shape[1] - 1 + n_steps)
        for layer, (keys, values) in zip(cache.layers, prefix.keys_values):
            layer.update(keys[rows], values[rows])
        attention = torch.cat([prefix.prompt_mask[rows], prefix.prompt_mask.new_ones(len(rows), n_steps - 1)], 1)
        position = prefix.prompt_mask[rows].sum(1, keepdim=True) - 1
        token = prefix.last_ids[rows]
        top_p = TopPLogitsWarper(self.config.top_p) if sample and self.config.top_p < 1 else None
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        done = torch.zeros(len(rows), dtype=torch.bool, device=self.device)
        last = torch.full((len(rows),), n_steps, device=self.device)  # the step of each summary's last token
        tokens, logprobs, values = [], [], []
        copied = None if sample or not self.config.copy_block_tokens else _CopiedContinuations(
            prompt_ids[rows], prefix.prompt_mask[rows], self.config.copy_block_tokens)
        for step in range(n_steps):
            out = self.lm(input_ids=token, attention_mask=attention, position_ids=position, cache=cache,
                          output_hidden_states=with_values)
            log_policy = self._log_policy(out.logits[:, -1])
            if copied is not None:
                log_policy = copied.block(log_policy, tokens)
            if sample:
                scores = log_policy if top_p is None else top_p(None, log_policy)
                token = torch.multinomial(scores.softmax(-1), 1)
            else:
                token = log_policy.argmax(-1, keepdim=True)
            token = token.masked_fill(done[:, None], pad)
            tokens.append(token)
            logprobs.append(log_policy.gather(1, token))
            if with_values:
                values.append(self._values(out.hidden_states[-1][:, -1:]))
            ends = token.squeeze(1) == eos
            if self.config.stop_at_line_end or self.config.stop_at_sentence_end:
                ends |= self._ends_summary(tokens)
            last = torch.where(ends & ~done, step, last)
            done |= ends
            if done.all():
                break
            position = position + 1
        summary_ids = torch.cat(tokens, dim=1)
        summary_mask = (torch.arange(summary_ids.shape[1], device=self.device) <= last[:, None]).long()
        texts = [
            strip_summary_header(chat_reply(
                self.tokenizer, self.config.summary_start + self.tokenizer.decode(ids[m.bool()], skip_special_tokens=True)))
            for ids, m in zip(summary_ids, summary_mask)
        ]
        mask = summary_mask.float()
        return Rollout(prefix, rows, summary_ids, summary_mask, torch.cat(logprobs, 1) * mask,
                       torch.cat(values, 1) * mask if with_values else None, texts, last == n_steps)

    @functools.cached_property
    def _end_ids(self) -> torch.Tensor:
        """Ids of the vocabulary's tokens that can end a summary: those holding a line break, and
        with `stop_at_sentence_end` those ending in a sentence's final mark."""
        def ends(text: str) -> bool:
            return "\n" in text or (self.config.stop_at_sentence_end and re.search(r"[.!?]\s*$", text) is not None)
        return torch.tensor([i for i in range(len(self.tokenizer)) if ends(self.tokenizer.decode([i]))],
                            device=self.device)

    def _ends_summary(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Rows whose newest token ends a line (or a sentence) that already holds summary text (not
        only the "##Summary" header the instruction asks for, nor blank lines)."""
        newest = tokens[-1].squeeze(1)
        ends = torch.isin(newest, self._end_ids)
        for row in ends.nonzero().flatten().tolist():
            before = self.tokenizer.decode(torch.cat(tokens[:-1], 1)[row].tolist() if len(tokens) > 1 else [],
                                           skip_special_tokens=True)
            line_start = self.tokenizer.decode([newest[row].item()]).split("\n")[0]
            ends[row] = bool(strip_summary_header(before + line_start))
        return ends

    @torch.no_grad()
    def reference_logprobs(self, rollout: Rollout, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        """log π_ref(z_t | ·) of the base model (adapters off), with its own prompt prefix."""
        if self.config.lora_rank == 0:
            raise ValueError("full fine-tuning has no adapter-free reference; use lora_rank > 0 or kl_coef=0")
        prefix = self.prefill(prompt_ids, prompt_mask, use_adapter=False)
        logprobs, _ = self.continue_from(prefix, rollout.prompt_index, rollout.summary_ids, rollout.summary_mask,
                                         use_adapter=False, with_values=False)
        return logprobs * rollout.summary_mask

    def summarize(self, records: list[Record], dataset: str, batch_size: int = 32, sample: bool = False,
                  desc: str = "summarizing", group: int = 1) -> list[str]:
        """Summaries for records (greedy by default, for evaluation and serving); with `sample`,
        `group` summaries per record, each record's next to each other, as an RL rollout draws them."""
        texts = []
        for start in progress(range(0, len(records), batch_size), desc=desc, unit="batch",
                              delay=SHOW_AFTER_S):  # one batch: a request's seconds, or a minute on a slow CPU
            ids, mask = self.batch_prompts(records[start : start + batch_size], dataset)
            with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
                texts += self.generate(ids, mask, group=group, sample=sample, with_values=False).texts
        return texts

    def restate(self, statements: list[str], dataset: str) -> list[str]:
        """A person's own words about themselves, each read as a one-note context and restated as
        this summarizer writes summaries: in the language its co-trained reward model learned to
        read. A small reward model reads "I can't stand cats" as a mention of cats; the summarizer,
        an instruction-tuned LM, reads it as a dislike ("The user prefers dogs.")."""
        return self.summarize([UserContext(context=[Note(text=s)]) for s in statements], dataset)


def _shared_head_length(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence holds alike: ([1, 2, 3], [1, 2, 4]) → 2."""
    head = 0
    for column in zip(*sequences):
        if any(token != column[0] for token in column):
            break
        head += 1
    return head


def _shared_columns(ids: torch.Tensor, mask: torch.Tensor) -> int:
    """How many leading columns are real tokens, the same in every row."""
    alike = (ids == ids[:1]).all(0) & mask.bool().all(0)
    return int(alike.long().cumprod(0).sum())


class _CopiedContinuations:
    """For each row, the token that would make its newest `n` tokens a run of its prompt's tokens."""

    def __init__(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, n: int):
        self.n = n
        self.follow = []  # per row: run of n - 1 prompt tokens → the tokens that follow it in the prompt
        for ids, mask in zip(prompt_ids.tolist(), prompt_mask.tolist()):
            prompt = [token for token, real in zip(ids, mask) if real]
            follow: dict[tuple[int, ...], list[int]] = {}
            for start in range(len(prompt) - n + 1):
                follow.setdefault(tuple(prompt[start : start + n - 1]), []).append(prompt[start + n - 1])
            self.follow.append(follow)

    def block(self, log_policy: torch.Tensor, tokens: list[torch.Tensor]) -> torch.Tensor:
        """`log_policy` with the copying continuations of each row's summary so far set to -inf."""
        if len(tokens) < self.n - 1:
            return log_policy
        recent = torch.cat(tokens[-(self.n - 1):], dim=1).tolist()
        blocked = [(row, token) for row, key in enumerate(recent) for token in self.follow[row].get(tuple(key), ())]
        if not blocked:
            return log_policy
        rows, banned = zip(*blocked)
        index = torch.tensor(rows, device=log_policy.device), torch.tensor(banned, device=log_policy.device)
        return log_policy.index_put(index, torch.tensor(float("-inf"), device=log_policy.device))


class _SelectedLogProbs(torch.autograd.Function):
    """log softmax(logits)[token] without materialising the log-softmax: forward keeps a
    logsumexp per row, backward writes one vocabulary-sized gradient in place."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        log_normalizer = logits.logsumexp(-1)
        ctx.save_for_backward(logits, tokens, log_normalizer)
        return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - log_normalizer

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, tokens, log_normalizer = ctx.saved_tensors
        # d/dlogits = onehot(token) - softmax(logits), scaled by the incoming gradient
        grad_logits = (logits - log_normalizer.unsqueeze(-1)).exp_().mul_(-grad.unsqueeze(-1))
        grad_logits.scatter_add_(-1, tokens.unsqueeze(-1), grad.unsqueeze(-1))
        return grad_logits, None


def selected_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log π(token) from logits [..., V] and token ids [...]."""
    return _SelectedLogProbs.apply(logits, tokens)

