"""Every training config in one place: a run's common fields (`RunConfig`) and the two trainers'
configs built on it, `RewardTrainConfig` (BTL, Oracle, ICL, DPL, VPL) and `PlusConfig` (Alg. 1).

Each field has its documentation under it (`plusrl config show METHOD` prints them); a recipe
fills them from YAML and `section.field=value` overrides (plusrl.config), and each config checks
its values on load, before any model loads. The same sections mean the same thing in both:
`data`, `reward_model` (the reward model's architecture), `rm_optim` (its optimizer).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from plusrl.data.prompts import family
from plusrl.methods import METHODS, method_spec
from plusrl.models.reward_model import RewardModelConfig
from plusrl.models.summarizer import SummarizerConfig


def check_tracker_installed(report_to: str) -> None:
    """Fail when the config loads, not after the models have: wandb and mlflow are optional installs."""
    if report_to in ("wandb", "mlflow") and importlib.util.find_spec(report_to) is None:
        raise ValueError(f"report_to={report_to} needs the {report_to} package: pip install {report_to}")


@dataclass
class DataConfig:
    """Which users a run trains on, how their context is given, and what it is evaluated and calibrated on."""

    dataset: str = "pets"
    """Built-in name (pets, pets-ood) or path to local files with train/test splits."""
    eval_datasets: list[str] | None = None
    """Datasets whose `test` split (or "NAME@SPLIT") is evaluated after training; None: the
    training dataset's own test split; []: none."""
    max_train_records: int = 0
    """Use only the first N training records (0 = all): for quick runs."""
    max_eval_records: int = 0
    """Evaluate only the first N test records (0 = all)."""
    context_type: Literal["pairs", "guideline", "conversation"] = "pairs"
    """How each user's context is given (Table 4)."""
    calibration_datasets: list[str] = field(default_factory=list)
    """Validation sets ("NAME@SPLIT") on which the guidance weight w of r̄ + w·(r − r̄) is chosen
    before the first evaluation (plusrl.eval.guidance: the w with the best mean accuracy there,
    the largest of ties). For methods that condition on text; []: score with the model as trained."""
    calibration_tolerance: float = 0.0
    """How far (a fraction of pairs) a larger w's mean validation accuracy may fall short of the
    best and still be chosen: differences smaller than it are read as noise, and the choice then
    goes to the larger weight on the user's text. 0: the best w, the largest of ties."""
    prompt_family: Literal["auto", "pets", "generic"] = "auto"
    """Which prompts (App. I/J) the summarizer and ICL read: pets (one-sentence animal facts) or
    generic; auto picks pets for datasets named pets* (and their proxy- twins), else generic."""

    def __post_init__(self):
        if self.max_train_records < 0 or self.max_eval_records < 0:
            raise ValueError("max_train_records and max_eval_records count records: 0 (all) or more")
        if not 0 <= self.calibration_tolerance < 1:
            raise ValueError(f"calibration_tolerance is a fraction of pairs in [0, 1), not {self.calibration_tolerance}")

    @property
    def evaluated(self) -> list[str]:
        return [self.dataset] if self.eval_datasets is None else self.eval_datasets

    @property
    def prompts(self) -> str:
        """The prompt family the data is read with."""
        return family(self.dataset) if self.prompt_family == "auto" else self.prompt_family


@dataclass
class OptimConfig:
    """AdamW with a warm-up and a cosine decay, for a reward model."""

    lr: float = 5e-5
    """Peak learning rate."""
    batch_size: int = 32
    """Global batch of preference pairs, split across processes."""
    epochs: int = 1
    """Passes over the training data (PLUS: over each iteration's fresh summaries)."""
    warmup_ratio: float = 0.03
    """Share of the steps with a linear warm-up before the cosine decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm."""
    adam_beta1: float = 0.9
    """AdamW β₁."""
    adam_beta2: float = 0.95
    """AdamW β₂."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""

    def __post_init__(self):
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"lr must be > 0 and batch_size, epochs ≥ 1 (got {self.lr}, {self.batch_size}, {self.epochs})")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio is a share of the steps in [0, 1), got {self.warmup_ratio}")


@dataclass
class PPOConfig:
    """Summarizer RL; defaults follow PLUS App. H Table 11 except where a recipe says otherwise."""

    advantage_estimator: Literal["gae", "rloo", "grpo"] = "gae"
    """gae: PPO with a critic, as the paper; rloo / grpo: several summaries per context, no critic."""
    group_size: int = 4
    """Summaries per context for rloo / grpo (at least 2: the baseline is the others' mean)."""
    gamma: float = 1.0
    """GAE discount over summary tokens (Eq. 5); 1: the return reaches every token undiscounted."""
    lam: float = 0.95
    """GAE λ: 1 is the Monte-Carlo return minus V, 0 one-step TD."""
    clip_eps: float = 0.2
    """ε of PPO's clipped ratio (Eq. 6)."""
    kl_coef: float = 0.001
    """β of the k1 KL penalty to the reference (0.01 or 0.001 in the paper; 0.001 for Pets).
    0 skips the reference pass, and the KL is then not measured (not logged)."""
    reward_clip: float = 10.0
    """The return R is clipped to [-reward_clip, reward_clip]."""
    value_coef: float = 0.5
    """Weight of the critic's clipped value loss beside the policy loss (gae only)."""
    value_clip: float = 0.2
    """How far a value prediction may move from the sampling pass's before its loss is clipped."""
    ppo_epochs: int = 1
    """Passes of PPO steps over each iteration's summaries (M_θ of Alg. 1)."""
    minibatch_size: int = 8
    """Summaries per PPO gradient step (global)."""
    actor_lr: float = 5e-7
    """Learning rate of the summarizer's trained weights (LoRA adapters, or all with lora_rank=0)."""
    critic_lr: float = 9e-7
    """Learning rate of the value head (gae only)."""
    warmup_ratio: float = 0.03
    """Share of the summarizer's steps with a linear warm-up before the cosine decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm."""
    adam_beta1: float = 0.9
    """AdamW β₁."""
    adam_beta2: float = 0.95
    """AdamW β₂."""

    def __post_init__(self):
        if self.advantage_estimator in ("rloo", "grpo") and self.group_size < 2:
            raise ValueError(f"{self.advantage_estimator} needs group_size ≥ 2 (the baseline of a summary is the "
                             f"mean of the others of its context), got {self.group_size}")
        if self.kl_coef < 0 or self.minibatch_size < 1 or self.ppo_epochs < 1:
            raise ValueError("kl_coef must be ≥ 0, minibatch_size and ppo_epochs ≥ 1")

    @property
    def group(self) -> int:
        """Summaries sampled per context."""
        return self.group_size if self.advantage_estimator in ("rloo", "grpo") else 1


@dataclass
class ReadingWarmupConfig:
    """Supervised steps before co-training that teach the summarizer to restate a person's own
    words ("Cats bore me; dogs never do." → "The user prefers dogs."). RL alone did not teach it
    (docs/experiments.md): the reward model learns from misread summaries to distrust them."""

    steps: int = 0
    """Optimizer steps of the warm-up; 0: none (the paper's PLUS)."""
    restatements: str = "pets-notes"
    """(note, summary) examples: a built-in set (plusrl.data.registry.RESTATEMENTS) or a JSONL file
    of {"context": [context items], "summary": "…"} lines, summaries in the instruction's form."""
    batch_size: int = 16
    """Examples per step."""
    lr: float = 2e-4
    """AdamW learning rate of the summarizer's LoRA weights during the warm-up (constant)."""
    replay_coef: float = 0.0
    """During co-training, each PPO step also descends replay_coef × the warm-up's loss on a batch
    of restatements, as InstructGPT's PPO-ptx mixes pretraining gradients into PPO: RL then keeps
    the reading it was taught, and the plain statement it restates in. 0: off."""
    replay_batch_size: int = 0
    """Restatements in each PPO step's replay batch; 0: `batch_size`. The replay's prompts cost
    most of a PPO step on a CPU (a batch of 16 is about two thirds of it on Pets, fp32): a smaller
    batch keeps the same mean NLL at the same weight, with more noise, for less time."""

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0 or self.replay_coef < 0 or self.replay_batch_size < 0:
            raise ValueError("reading_warmup: steps ≥ 0, batch_size ≥ 1, lr > 0, replay_coef ≥ 0 and "
                             "replay_batch_size ≥ 0")


@dataclass
class WrittenNotesConfig:
    """Pairs conditioned on a person's own note, as written, mixed into every reward-model update.
    A note is a summary the person wrote themselves, as an edit in the service is: trained on the
    summarizer's statements alone, the reward model takes the first animal named in a person's words
    ("Cats bore me; dogs never do." → cats); trained on notes in many wordings as well, it reads
    them (docs/experiments.md)."""

    dataset: str = ""
    """Users whose context holds a note about themselves: a registered notes dataset (pets-notes and
    its variants, plusrl.data.pets.NOTE_MIXES, described in docs/data.md) or a path. Their
    pairs are scored under the note's text. Empty: the reward model reads summaries only (the paper's
    PLUS)."""
    rows: int = 64
    """Pairs of those users per iteration, drawn afresh each iteration (beside the iteration's
    `rollout_batch_size × ppo.group` summaries)."""
    warmup_steps: int = 0
    """Bradley-Terry steps of the reward model on these notes alone before iteration 0 (batches of
    `rm_optim.batch_size` at a constant `rm_optim.lr`), so that it knows what a description is worth
    before it rewards the summarizer: on real text the co-trained reward model otherwise stays near
    chance while the summarizer looks for a description it can read (docs/experiments.md). 0: none."""
    epochs: int = 0
    """Passes of each reward-model update over these rows; 0: `rm_optim.epochs`, as over the
    summaries. E.g. rm_optim.epochs=1 with 2 here: the notes' many wordings get two passes and the
    summarizer's plain statements one (a sixth less of the Pets recipe's update; docs/experiments.md
    measures what it does to the reading of notes)."""
    head_loss_coef: float = 0.0
    """λ of a second Bradley-Terry loss on these rows, on the head's reward alone (the similarity term
    left out): loss = BT(head + w·cos) + λ·BT(head). With a similarity term the note rows' loss is
    soon near 0 through cos alone, and the cross-encoder, which reads note and response together, is
    left barely reading notes at all; with λ > 0 both read them, and the reward sums two readers. On the
    Pets recipe (λ = 1) both parts misread the same wordings and people's words were read worse
    (docs/experiments.md). 0: none. Needs reward_model.similarity_weight > 0 to mean anything else
    than a larger step."""

    def __post_init__(self):
        if self.head_loss_coef < 0:
            raise ValueError(f"written_notes.head_loss_coef must be ≥ 0, not {self.head_loss_coef}")
        if self.rows < 1 or self.warmup_steps < 0 or self.epochs < 0:
            raise ValueError(f"written_notes: rows ≥ 1, warmup_steps ≥ 0 and epochs ≥ 0, "
                             f"not {self.rows}, {self.warmup_steps} and {self.epochs}")
        if self.warmup_steps and not self.dataset:
            raise ValueError("written_notes.warmup_steps needs written_notes.dataset: the notes it trains on")


@dataclass
class RunConfig:
    """What every training run has, whatever its trainer."""

    trainer: ClassVar[str]
    """The trainer of plusrl.methods that takes this config."""

    method: str = "btl"
    """A method of plusrl.methods.METHODS whose trainer takes this config (`plusrl config show` lists them)."""
    output_dir: str = ""
    """Run folder; empty: runs/<dataset>-<method>."""
    seed: int = 0
    """Seeds Python, NumPy and torch, and the order users are drawn in."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """auto: bf16 autocast only where this machine measured it ≥ 1.25x faster than fp32 (GPUs with bf16,
    CPUs with AVX-512 BF16 or AMX), else fp32 (plusrl.training.precision). config.yaml saves what it
    resolved to, and why."""
    report_to: Literal["tensorboard", "wandb", "mlflow", "none"] = "tensorboard"
    """Where metrics go besides metrics.jsonl, through accelerate's trackers (wandb and mlflow
    must be installed; tensorboard writes to <run>/tb)."""
    save_every: int = 50
    """Checkpoint every N steps (reward models: optimizer steps; PLUS: iterations) and at the end."""
    data: DataConfig = field(default_factory=DataConfig)
    """The users it trains on, and what it is evaluated and calibrated on."""

    def __post_init__(self):
        check_tracker_installed(self.report_to)
        if method_spec(self.method).trainer != self.trainer:
            mine = ", ".join(name for name, spec in METHODS.items() if spec.trainer == self.trainer)
            raise ValueError(f"method {self.method!r} does not train with this config; it takes {mine}")
        if self.save_every < 1:
            raise ValueError(f"save_every must be ≥ 1, not {self.save_every}")


@dataclass
class RewardTrainConfig(RunConfig):
    """A reward model trained alone on preference pairs: BTL, Oracle, ICL (Bradley-Terry, Eq. 3), DPL, VPL."""

    trainer: ClassVar[str] = "reward"

    log_every: int = 10
    """Log loss, accuracy and learning rate every N optimizer steps."""
    latent_kl_weight: float = 0.01
    """VPL: weight of KL(q(z | context) || N(0, I)) in the loss."""
    latent_noise_scale: float = 1e-3
    """VPL: z = μ + scale·σ·ε while training. VPL's authors scale ε by 1e-3 (their
    `reparameterization`); at 1 the noise of 512 latent dimensions buries μ, the decoder learns
    to ignore z and the posterior collapses to the prior."""
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    """The reward model: backbone, pooling, head, what it reads."""
    rm_optim: OptimConfig = field(default_factory=OptimConfig)
    """Its optimizer: `epochs` passes over the training pairs, `batch_size` pairs per step (global)."""

    def __post_init__(self):
        super().__post_init__()
        if self.latent_kl_weight < 0 or self.latent_noise_scale < 0:
            raise ValueError(f"latent_kl_weight and latent_noise_scale must be >= 0, "
                             f"not {self.latent_kl_weight} and {self.latent_noise_scale}")


@dataclass
class PlusConfig(RunConfig):
    """Alg. 1: a summarizer and a summary-conditioned reward model trained together (the method
    says which of the two learn: plus, plus-untrained, plus-static-rm)."""

    trainer: ClassVar[str] = "plus"

    method: str = "plus"
    save_every: int = 5
    iterations: int = 20
    """Co-training iterations (each: sample, generate, score, update both models)."""
    rollout_batch_size: int = 32
    """N: (context, pair) tuples per iteration (global)."""
    reward_model_init: str = ""
    """Run folder of a trained reward model to start from (needed when it stays static)."""
    freeze_summarizer_iterations: int = 0
    """First iterations in which only the reward model learns (OpenRLHF's freezing_actor_steps).
    Under a reward model no better than chance, a summary that says nothing has the best expected
    return (margin 0 scores log ½; a confident wrong margin scores less), so a summarizer that
    moves first can collapse onto a generic sentence before the reward model reads anything."""
    sample_every: int = 5
    """Write example summaries to samples.jsonl every K iterations."""
    summarizer: SummarizerConfig = field(default_factory=SummarizerConfig)
    """The summarizer π_θ: model, prompt, summary length and sampling."""
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    """The summary-conditioned reward model r_φ."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """The summarizer's RL."""
    reading_warmup: ReadingWarmupConfig = field(default_factory=ReadingWarmupConfig)
    """Supervised steps teaching the summarizer to read a person's own words, before iteration 0."""
    rm_optim: OptimConfig = field(default_factory=lambda: OptimConfig(batch_size=16))
    """Reward-model updates: `epochs` passes of Bradley-Terry steps over each iteration's fresh
    summaries (and written notes), `batch_size` pairs per step (global)."""
    written_notes: WrittenNotesConfig = field(default_factory=WrittenNotesConfig)
    """People's own notes as the reward model's conditioning, beside the summaries (off by default)."""

    def __post_init__(self):
        super().__post_init__()
        if not method_spec(self.method).train_reward_model and not self.reward_model_init:
            raise ValueError(f"{self.method} keeps the reward model static: give reward_model_init=<run folder>")
        if min(self.iterations, self.rollout_batch_size, self.sample_every) < 1:
            raise ValueError("iterations, rollout_batch_size and sample_every must be ≥ 1")
        if not 0 <= self.freeze_summarizer_iterations < self.iterations:
            raise ValueError(f"freeze_summarizer_iterations must be in [0, iterations={self.iterations}), "
                             f"not {self.freeze_summarizer_iterations}")


CONFIGS: dict[str, type[RunConfig]] = {"reward": RewardTrainConfig, "plus": PlusConfig}
"""The config class of each trainer kind of plusrl.methods."""
