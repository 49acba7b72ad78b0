"""One object that knows a run folder's layout; train, eval, the CLI and the service all read runs through it.

    runs/pets-plus/
      config.yaml             the full config the run trained with
      metrics.jsonl           one row per iteration (PLUS) or logged step (reward models)
      samples.jsonl           example summaries (PLUS)
      tb/                     TensorBoard logs
      checkpoints/latest      names the newest complete checkpoint
      checkpoints/step-N/     model/ (reward model), summarizer/ (PLUS), trainer_state.pt
      eval/NAME.json          held-out metrics per dataset, NAME.predictions.jsonl beside them
      eval/checks/            the readability and edit-following checks
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from plusrl.data.readers import DataError
from plusrl.io import atomic_write_text
from plusrl.training.checkpoint import latest_checkpoint

# Config keys of runs trained by older versions of plusrl, and where their values live now
_RENAMED = {"rm_minibatch_size": ("rm_optim", "batch_size"), "rm_epochs": ("rm_optim", "epochs")}
_RENAMED_SECTIONS = {"model": "reward_model", "optim": "rm_optim"}  # reward-model runs: one naming with PLUS
_DROPPED = {"train_summarizer", "train_reward_model", "log_every"}  # the method says what trains


@dataclass
class Guidance:
    """A run's guidance.json: the weight w of r̄ + w·(r − r̄) calibrated for its reward model
    (plusrl.eval.guidance chooses it), and the evidence."""

    weight: float
    """w; 1 scores with the reward model as trained."""
    population: list[str]
    """The training users' conditioning texts r̄ averages over."""
    validation: dict[str, dict[str, float]]
    """The evidence: accuracy on each calibration set at each w of plusrl.eval.guidance.GRID."""
    checkpoint: str = ""
    """The checkpoint it was calibrated for: a run trained further is calibrated again."""
    tolerance: float = 0.0
    """The rule's tolerance (data.calibration_tolerance): the largest w within it of the best."""

    def __post_init__(self):
        if not 0 < self.weight < float("inf"):
            raise ValueError(f"guidance weight must be a positive number, not {self.weight}")

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Guidance:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise DataError(f"{path}: not a guidance file ({error}); delete it or run plusrl calibrate again") from None


REWARD_MODEL = "model"
SUMMARIZER = "summarizer"
TRAINER_STATE = "trainer_state.pt"


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # -- files
    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_file(self) -> Path:
        return self.path / "samples.jsonl"

    @property
    def eval_dir(self) -> Path:
        return self.path / "eval"

    @property
    def checks_dir(self) -> Path:
        return self.eval_dir / "checks"

    @property
    def guidance_file(self) -> Path:
        """The guidance weight calibrated for the run's reward model (plusrl.eval.guidance)."""
        return self.path / "guidance.json"

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or None before the first one."""
        return latest_checkpoint(self.path)

    def checkpoint(self) -> Path:
        """The newest checkpoint, or a clear error when the run has none."""
        ckpt = self.latest()
        if ckpt is None:
            raise FileNotFoundError(f"{self.path}: no checkpoint found (train first: plusrl train ...)")
        return ckpt

    # -- what is in it
    def _saved_config(self) -> dict:
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.path}: no config.yaml; is this a plusrl run folder?")
        return yaml.safe_load(self.config_file.read_text()) or {}

    def method(self) -> str:
        return self._saved_config().get("method", "btl")

    def config(self):
        """The run's config, as the class its method trains with (older PLUS keys upgraded)."""
        from plusrl.config import from_dict
        from plusrl.methods import method_spec

        data = self._saved_config()
        config_class = method_spec(data.get("method", "btl")).config_class()
        fields = {f.name for f in dataclasses.fields(config_class)}
        for old, (section, key) in _RENAMED.items():
            if old in data and old not in fields:
                data.setdefault(section, {})[key] = data.pop(old)
        for old, new in _RENAMED_SECTIONS.items():
            if old in data and old not in fields:
                data[new] = data.pop(old)
        for old in _DROPPED - fields:
            data.pop(old, None)
        return from_dict(config_class, data)  # fields added since the run keep their defaults

    def has_summarizer(self) -> bool:
        ckpt = self.latest()
        return ckpt is not None and (ckpt / SUMMARIZER).is_dir()

    def reward_model(self):
        """The newest reward model, scoring with the run's calibrated guidance when it has one."""
        from plusrl.models.reward_model import RewardModel

        model = RewardModel.load(self.checkpoint() / REWARD_MODEL)
        if self.guidance_file.is_file():
            guidance = Guidance.load(self.guidance_file)
            model.use_guidance(guidance.weight, guidance.population)
        return model

    def summarizer(self):
        """The run's trained summarizer (PLUS methods), or a clear error for runs without one."""
        from plusrl.models.summarizer import Summarizer

        if not self.has_summarizer():
            raise FileNotFoundError(f"{self.path}: no checkpoint with a summarizer (train a PLUS method)")
        summarizer = Summarizer.load(self.checkpoint() / SUMMARIZER)
        if self._saved_config().get("precision") == "bf16":
            import torch

            from plusrl.training.precision import resolve_precision

            # write summaries as the run sampled them in training, where this machine runs bf16 fast
            if resolve_precision("auto", summarizer.device).name == "bf16":
                summarizer.autocast_dtype = torch.bfloat16
        return summarizer

