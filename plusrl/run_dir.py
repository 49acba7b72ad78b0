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
from dataclasses import dataclass
from pathlib import Path

import yaml

from plusrl.training.checkpoint import latest_checkpoint

# PLUS config keys of runs trained before session 7, and where their values live now
_RENAMED = {"rm_minibatch_size": "rm_optim.batch_size", "rm_epochs": "rm_optim.epochs"}
_DROPPED = {"train_summarizer", "train_reward_model", "log_every"}  # the method says what trains

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
    def method(self) -> str:
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.path}: no config.yaml; is this a plusrl run folder?")
        return (yaml.safe_load(self.config_file.read_text()) or {}).get("method", "btl")

    def config(self):
        """The run's config, as the class its method trains with."""
        from plusrl.config import load_config
        from plusrl.methods import method_spec

        config_class, _ = method_spec(self.method()).trainer_api()
        data = yaml.safe_load(self.config_file.read_text()) or {}
        fields = {f.name for f in dataclasses.fields(config_class)}
        renamed = [(_RENAMED[key], value) for key, value in data.items() if key in _RENAMED and key not in fields]
        items = _upgraded(data, fields) + renamed  # last wins: an old run's own value over the section default
        return load_config(config_class, None, [f"{key}={json.dumps(value)}" for key, value in items])

    def has_summarizer(self) -> bool:
        ckpt = self.latest()
        return ckpt is not None and (ckpt / SUMMARIZER).is_dir()

    def reward_model(self):
        from plusrl.models.reward_model import RewardModel

        return RewardModel.load(self.checkpoint() / REWARD_MODEL)

    def summarizer(self):
        """The run's trained summarizer (PLUS methods), or a clear error for runs without one."""
        from plusrl.models.summarizer import Summarizer

        if not self.has_summarizer():
            raise FileNotFoundError(f"{self.path}: no checkpoint with a summarizer (train a PLUS method)")
        return Summarizer.load(self.checkpoint() / SUMMARIZER)


def _upgraded(data: dict, fields: set[str], prefix: str = "") -> list[tuple[str, object]]:
    """A saved config as dotted (key, value) overrides; top-level keys of older PLUS runs that
    are no longer fields of the config class are renamed or dropped."""
    items = []
    for key, value in data.items():
        if isinstance(value, dict):
            items += _upgraded(value, fields, f"{prefix}{key}.")
        elif prefix or key in fields:
            items.append((f"{prefix}{key}", value))
        elif key not in _DROPPED and key not in _RENAMED:
            items.append((key, value))  # unknown: load_config names it
    return items
