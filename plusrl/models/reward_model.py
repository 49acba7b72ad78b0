"""Reward model = any Hugging Face backbone (encoder or decoder) + a linear head.

It scores `[conditioning] + prompt + response`, where the conditioning part is what makes a
method: nothing (BTL), the oracle text (Oracle), the raw context (ICL) or a summary (PLUS).

With `similarity_weight > 0` a conditioned reward also reads how close the response is to the
conditioning text, each embedded on its own by the same backbone:

    r(s | c) = head(pool(backbone([c; s]))) + w · cos(embed(c), embed(response))

The head alone learns the training population's prior (every Pets user ranks birds above
rabbits) and cannot overturn it from the conditioning text; the similarity term is a path on
which "the user likes what the text talks about" transfers to things never seen in training.

With `similarity_centering`, the term reads what sets this user's text apart from the average
user's, (ê(c) − μ)·ê(response) with μ the population's mean unit embedding of conditioning
texts: on pairs every user agrees on, cos(c, response) could learn the population prior too
(one response close to every user's text); the centred term cannot, so that prior stays in
the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from plusrl.config import ConfigError
from plusrl.data.prompts import SUMMARY_CONDITIONING, summary_conditioning
from plusrl.data.readers import DataError
from plusrl.models.cpu_dropout import use_cpu_dropout
from plusrl.models.loader import CHARS_PER_TOKEN, disable_dropout, load_backbone, load_tokenizer
from plusrl.models.persistence import TrainedWeights
from plusrl.progress import progress
from plusrl.training.losses import guided_reward


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
    """LoRA scale α (the update is α/r · BA)."""
    latent_dim: int = 0
    """VPL: size of the user latent z appended to the pooled features (0 = no latent)."""
    latent_hidden: int = 512
    """VPL: width of the user encoder (App. H Table 12: latent and hidden size 512)."""
    similarity_weight: float = 0.0
    """w in r(s|c) = head(...) + w·cos(embed(c), embed(response)); 0 = the head alone.
    Used only by methods that condition on text (Oracle, ICL, PLUS)."""
    similarity_centering: bool = False
    """Use (ê(c) − μ)·ê(response) for the similarity term, μ the mean unit embedding of the
    training users' conditioning texts (the batch's while training, a running mean kept with the
    weights for scoring, as batch norm keeps its statistics)."""
    disable_dropout: bool = False
    """Turn the backbone's dropout off while training, as TRL's RewardConfig does by default. On a CPU
    the attention's dropout masks grow with the square of the input: MiniLM-L6's update on DSP's
    256-token inputs took 4.9 s without dropout against 14.4 s with torch's masks, on Pets' short ones 2.5
    against 2.7 s (docs/performance.md). Off by default: the shipped recipes were measured with dropout. With
    dropout on, masks are drawn on a CPU by plusrl.models.cpu_dropout (the same masks, faster)."""
    summary_template: str = SUMMARY_CONDITIONING
    """How a summary, or a person's note, stands before the scored conversation; `{summary}` marks where.
    The default is App. I.1's sentence around it. "{summary}" alone gives the user's text without the
    27 tokens the sentence adds to every row, which an encoder reads the same for every user: half of
    each Pets row (docs/performance.md)."""
    activation_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them: training
    memory falls from (layers × tokens) activations to about one layer's, for ~1/3 more compute.
    For decoders reading long inputs (ICL's whole context): SmolLM2-135M with 8 pairs of 384 tokens
    grows past 12 GB without it. Scores are the same."""

    def __post_init__(self):
        if self.pooling not in ("auto", "mean", "last"):
            raise ValueError(f"reward model pooling must be auto, mean or last, not {self.pooling!r}")
        if self.max_length < 8:
            raise ValueError(f"reward model max_length must be at least 8 tokens, not {self.max_length}")
        if self.similarity_weight < 0:
            raise ValueError(f"similarity_weight must be >= 0, not {self.similarity_weight}")
        try:
            written = self.summary_template.format(summary="\0")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"summary_template may hold no braces but one {{summary}}: {self.summary_template!r} ({err})")
        if written.count("\0") != 1:
            raise ValueError(f"summary_template must hold {{summary}} exactly once, not {self.summary_template!r}")


def centered_similarity(conditioning: torch.Tensor, response: torch.Tensor, population_mean: torch.Tensor) -> torch.Tensor:
    """(ê(c) − μ)·ê(s) per row, ê the unit vector: cos(c, s) minus the mean user's cos(·, s) when
    μ is the mean of the users' ê(c). c = (2, 0), s = (3, 4), μ = (0.5, 0.5): (0.5, −0.5)·(0.6, 0.8) = −0.1."""
    unit_c = torch.nn.functional.normalize(conditioning, dim=-1)
    unit_s = torch.nn.functional.normalize(response, dim=-1)
    return ((unit_c - population_mean) * unit_s).sum(-1)


def longest_first(lengths: list[int], room: int) -> list[int]:
    """Tokens kept of each sequence so that they sum to at most `room`, taking from the longest
    first (the tokenizers' "longest_first" rule): (10, 3) in 8 → (5, 3); (10, 9) in 8 → (4, 4)."""
    if sum(lengths) <= room:
        return lengths
    if len(lengths) == 1:
        return [room]
    a, b = lengths
    if 2 * min(a, b) <= room:  # the shorter fits in half the room: it stays whole
        return [a, room - a] if a <= b else [room - b, b]
    half = room // 2
    return [room - half, half] if a >= b else [half, room - half]


def clip_chars(texts: list[str], max_tokens: int) -> tuple[list[str], list[bool]]:
    """Cut each text to max_tokens * CHARS_PER_TOKEN characters; report which were cut."""
    limit = max_tokens * CHARS_PER_TOKEN
    return [t[:limit] for t in texts], [len(t) > limit for t in texts]


@dataclass
class Tokens:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


@dataclass
class EncodedBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    n_truncated: int
    conditioning: Tokens | None = None
    """Each distinct conditioning text alone (for the similarity term), indexed by `conditioning_index`."""
    conditioning_index: torch.Tensor | None = None
    response: Tokens | None = None
    """Each response alone (for the similarity term)."""


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
        if config.disable_dropout:
            disable_dropout(backbone)
        else:
            use_cpu_dropout(backbone)
        if config.activation_checkpointing:
            if not backbone.supports_gradient_checkpointing:
                raise ConfigError(f"reward_model.activation_checkpointing: {config.backbone} does not support it")
            # non-reentrant: the frozen embeddings of a LoRA model need no input gradients to recompute
            backbone.activation_checkpointing_enable({"use_reentrant": False})
        self.pooling = config.pooling
        if self.pooling == "auto":
            self.pooling = "mean" if _is_encoder(backbone.config) else "last"
        if config.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules="all-linear")
            backbone = get_peft_model(backbone, lora)
        # an encoder's own pooler (BERT's [CLS] dense layer) is never read: we pool its hidden states.
        # Frozen, it is neither trained nor saved, and DDP does not wait for gradients it never gets.
        for name, parameter in backbone.named_parameters():
            if "pooler." in f".{name}":
                parameter.requires_grad_(False)
        self.backbone = backbone
        hidden = backbone.config.hidden_size
        self.user_encoder = UserEncoder(2 * hidden, config.latent_hidden, config.latent_dim) if config.latent_dim else None
        # VPL's reward decoder is an MLP over [pooled; z]: a linear head would add the same w·z to a
        # user's chosen and rejected response, and z would cancel in the BT margin
        self.head = nn.Sequential(nn.Linear(hidden + config.latent_dim, config.latent_hidden), nn.ReLU(),
                                  nn.Linear(config.latent_hidden, config.n_outputs)) if config.latent_dim \
            else nn.Linear(hidden, config.n_outputs)
        out_layer = self.head[-1] if config.latent_dim else self.head
        nn.init.normal_(out_layer.weight, std=1.0 / (out_layer.in_features + 1) ** 0.5)
        nn.init.zeros_(out_layer.bias)
        if config.similarity_centering:
            self.register_buffer("conditioning_mean", torch.zeros(hidden))
        self.mark_trained_weights(statistics=("conditioning_mean",) if config.similarity_centering else ())
        self.use_guidance(1.0, [])

    def as_conditioning(self, summary: str) -> str:
        """A summary, or a person's note, in the words this model reads it in (its summary_template)."""
        return summary_conditioning(summary, self.config.summary_template)

    def use_guidance(self, weight: float, population: list[str]) -> None:
        """Score conditioned responses with r̄ + w·(r − r̄) from now on (`guided_reward`), r̄ the mean
        reward under the `population` texts (training users'); w = 1 or no population: r itself.
        Set from a run's guidance.json (plusrl.eval.guidance); training never uses it."""
        self.guidance_weight, self.population = weight, list(population)

    def guide(self, rewards: torch.Tensor, prompts: list[str], responses: list[str]) -> torch.Tensor:
        """`rewards` (under each row's own conditioning) with guidance applied, when it is set."""
        if self.guidance_weight == 1.0 or not self.population:
            return rewards
        population = self.population_reward(self.population, prompts, responses)
        return guided_reward(rewards, population.to(rewards.device, rewards.dtype), self.guidance_weight)

    @torch.no_grad()
    def population_reward(self, population: list[str], prompts: list[str], responses: list[str],
                          batch_size: int = 64) -> torch.Tensor:
        """r̄(s): each response's mean reward under the `population` texts, as float32 on the CPU.

        r̄ does not depend on the user, so each distinct (prompt, response) is scored once: an
        evaluation set repeats its responses across users (Pets-OOD: 400 scored rows, 40 distinct),
        and each population text costs a full pass over what is scored.
        """
        distinct = list(dict.fromkeys(zip(prompts, responses, strict=True)))
        total = torch.zeros(len(distinct))
        for text in progress(population, desc="population reward r̄", unit="text"):
            for start in range(0, len(distinct), batch_size):
                rows = distinct[start : start + batch_size]
                batch = self.encode([text] * len(rows), [p for p, _ in rows], [r for _, r in rows])
                total[start : start + len(rows)] += self.expected_reward(batch).float().cpu()
        row_of = {pair: i for i, pair in enumerate(distinct)}
        return (total / len(population))[[row_of[pair] for pair in zip(prompts, responses)]]

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def encode(self, conditionings: list[str] | None, prompts: list[str], responses: list[str]) -> EncodedBatch:
        """Tokenize (conditioning, prompt + response) pairs; over-long inputs are cut and counted.

        Cost is linear in the kept text whatever a caller sends: texts are cut by characters
        first, and over-long pairs are cut to fit before the pair is tokenized (the fast
        tokenizers' own pair truncation builds every overflow window: quadratic time and memory).
        """
        main = [f"User: {p}\nAssistant: {r}" for p, r in zip(prompts, responses, strict=True)]
        pieces = [main] if conditionings is None else [conditionings, main]
        fitted, n_truncated = self._fit(pieces)
        batch = self._tokenize(*fitted)
        encoded = EncodedBatch(batch.input_ids, batch.attention_mask, n_truncated)
        if conditionings is not None and self.config.similarity_weight > 0:
            distinct = list(dict.fromkeys(fitted[0]))
            position = {text: i for i, text in enumerate(distinct)}
            encoded.conditioning = self._tokenize(distinct)
            encoded.conditioning_index = torch.tensor([position[c] for c in fitted[0]], device=self.device)
            encoded.response = self._tokenize(self._fit([responses])[0][0])
        return encoded

    def _fit(self, pieces: list[list[str]]) -> tuple[list[list[str]], int]:
        """Cut one or two parallel lists of texts so that each row fits max_length tokens."""
        room = self.config.max_length - self.tokenizer.num_special_tokens_to_add(pair=len(pieces) == 2)
        clipped = [clip_chars(texts, self.config.max_length) for texts in pieces]
        ids = [self.tokenizer(texts, add_special_tokens=False)["input_ids"] for texts, _ in clipped]
        fitted = [list(texts) for texts, _ in clipped]
        n_truncated = 0
        for row, lengths in enumerate(zip(*(map(len, column) for column in ids))):
            kept = longest_first(list(lengths), room)
            cut = any(c[1][row] for c in clipped)
            for column, (n_kept, n) in enumerate(zip(kept, lengths)):
                if n_kept < n:
                    fitted[column][row] = self.tokenizer.decode(ids[column][row][:n_kept])
                    cut = True
            n_truncated += cut
        return fitted, n_truncated

    def _tokenize(self, *texts: list[str]) -> Tokens:
        batch = self.tokenizer(
            *texts, truncation="longest_first", max_length=self.config.max_length, padding=True, return_tensors="pt"
        )
        return Tokens(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))

    def encode_pairs(self, records, conditionings: list[str] | None) -> EncodedBatch:
        """One batch scoring both sides of each pair: chosen responses first, then rejected."""
        return self.encode(
            None if conditionings is None else conditionings + conditionings,
            [r.prompt for r in records] * 2,
            [r.chosen for r in records] + [r.rejected for r in records],
        )

    def forward(self, batch: EncodedBatch, latent: torch.Tensor | None = None, with_head: bool = False):
        """Rewards, one per row (DPL: mean and log-variance); `with_head`: also the head's part alone,
        before the similarity term is added (for a loss on each reader)."""
        pooled = self._pool(batch.input_ids, batch.attention_mask)
        if self.user_encoder is not None:
            if latent is None:
                raise ValueError("this reward model conditions on a user latent (VPL): pass `latent`")
            pooled = torch.cat([pooled, latent.to(pooled.dtype)], dim=-1)
        out = head = self.head(pooled.to(next(self.head.parameters()).dtype))
        if batch.conditioning is not None:
            conditioning = self._embed(batch.conditioning)[batch.conditioning_index]
            response = self._embed(batch.response)
            if self.config.similarity_centering:
                similarity = centered_similarity(conditioning, response, self._population_mean(conditioning))
            else:
                similarity = torch.cosine_similarity(conditioning, response, dim=-1)
            bonus = self.config.similarity_weight * similarity.to(out.dtype).unsqueeze(-1)
            out = torch.cat([out[:, :1] + bonus, out[:, 1:]], dim=-1)  # DPL: the bonus moves the mean only
        if self.config.n_outputs == 1:
            out, head = out.squeeze(-1), head.squeeze(-1)
        return (out, head) if with_head else out

    def _population_mean(self, conditioning: torch.Tensor, momentum: float = 0.1) -> torch.Tensor:
        """μ: the batch's mean unit conditioning embedding while training (and folded into the
        running mean), the running mean when scoring."""
        if not self.training:
            return self.conditioning_mean.to(conditioning.dtype)
        batch_mean = torch.nn.functional.normalize(conditioning, dim=-1).mean(0)
        with torch.no_grad():
            self.conditioning_mean.lerp_(batch_mean.detach().to(self.conditioning_mean.dtype), momentum)
        return batch_mean

    def _embed(self, tokens: Tokens) -> torch.Tensor:
        """Mean-pooled sentence embedding (what MiniLM was trained to produce), whatever the head's pooling."""
        hidden = self.backbone(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).last_hidden_state
        mask = tokens.attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    def _pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            return self._embed(Tokens(input_ids, attention_mask))
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def user_latent(self, records) -> tuple[torch.Tensor, torch.Tensor]:
        """VPL's posterior q(z | context) = N(mean, exp(logvar)) from each user's context pairs.

        Pairs are embedded by the frozen backbone (as VPL embeds them with a frozen LLM); the
        encoder over those embeddings is trained.
        """
        pairs = [[item for item in r.context if getattr(item, "kind", None) == "pair"] for r in records]
        if missing := [r.user_id for r, p in zip(records, pairs) if not p]:
            raise DataError(f"VPL encodes a user from labelled preference pairs; user {missing[0]} has none "
                            f"({len(missing)} such records). VPL cannot read unlabelled conversations or notes.")
        flat = [p for user in pairs for p in user]
        enc = self.encode(None, [p.prompt for p in flat] * 2, [p.chosen for p in flat] + [p.rejected for p in flat])
        with torch.no_grad():
            embedded = self._pool(enc.input_ids, enc.attention_mask).float()
        features = torch.cat([embedded[: len(flat)], embedded[len(flat) :]], dim=-1)
        width = max(map(len, pairs))
        padded = features.new_zeros(len(records), width, features.shape[-1])
        present = torch.zeros(len(records), width, dtype=torch.bool, device=features.device)
        start = 0
        for i, user in enumerate(pairs):
            padded[i, : len(user)] = features[start : start + len(user)]
            present[i, : len(user)] = True
            start += len(user)
        return self.user_encoder(padded, present)

    def expected_reward(self, batch: EncodedBatch, records=None) -> torch.Tensor:
        """The reward that ranks responses, one per row: a distributional (DPL) head's mean; with a
        user latent (VPL), the reward at the posterior mean of each row's user. The rows are
        `records` in order, repeated (encode_pairs: the chosen rows, then the rejected rows), so
        each user's latent is inferred once."""
        latent = None
        if self.user_encoder is not None:
            latent = self.user_latent(records)[0].repeat(batch.input_ids.shape[0] // len(records), 1)
        out = self(batch, latent)
        return out[..., 0] if self.config.n_outputs > 1 else out

    def score(self, conditionings: list[str] | None, prompts: list[str], responses: list[str]) -> torch.Tensor:
        rewards = self.expected_reward(self.encode(conditionings, prompts, responses))
        return rewards if conditionings is None else self.guide(rewards, prompts, responses)


class UserEncoder(nn.Module):
    """VPL's encoder: (chosen, rejected) embedding pairs → self-attention over a user's pairs →
    mean-pooled → Gaussian posterior over the user latent z."""

    def __init__(self, pair_dim: int, hidden: int, latent_dim: int, heads: int = 4):
        super().__init__()
        self.pair_mlp = nn.Sequential(nn.Linear(pair_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.to_posterior = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, pairs: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pair_mlp(pairs)
        h = h + self.attention(h, h, h, key_padding_mask=~present, need_weights=False)[0]
        weights = present.unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1)
        mean, logvar = self.to_posterior(pooled).chunk(2, dim=-1)
        return mean, logvar.clamp(-10, 10)
