"""What each method is, in one place. Everything else looks a method up here.

Adding a method: one `MethodSpec` entry below, and, when it conditions or trains in a way no
entry does yet, the one module that implements that (a conditioning kind in
`models/conditioning.py`, a loss in `training/losses.py`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from plusrl.config import ConfigError

Conditioning = Literal["none", "oracle", "context", "summary", "latent"]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    conditioning: Conditioning
    """What the reward model reads beside the response: nothing, the oracle text, the whole
    context (ICL), a summary written by the run's summarizer, or a latent inferred from the
    context pairs (VPL)."""
    trainer: Literal["reward", "plus"]
    """reward: Bradley-Terry (or DPL/VPL) training of the reward model alone (training/reward.py);
    plus: Alg. 1 with a summarizer (training/plus.py). Named, not imported: TRAINERS."""
    loss: Literal["bradley_terry", "dpl", "vpl"] = "bradley_terry"
    """dpl: a mean and a log-variance per response (its reward is the mean); vpl: Bradley-Terry
    plus the KL of the user latent to its prior (its reward uses the latent's mean)."""
    train_summarizer: bool = True
    """plus trainer: does the summarizer learn (False: PLUS-untrained and the like)."""
    train_reward_model: bool = True
    """plus trainer: does the reward model learn (False needs `reward_model_init`)."""

    @property
    def has_summarizer(self) -> bool:
        return self.trainer == "plus"

    def config_class(self):
        """The config class this method's trainer takes (plusrl.training.configs)."""
        from plusrl.training.configs import CONFIGS

        return CONFIGS[self.trainer]

    def train_function(self):
        """The function that trains this method, imported on demand."""
        module, name = TRAINERS[self.trainer].split(":")
        return getattr(importlib.import_module(module), name)


TRAINERS = {"reward": "plusrl.training.reward:train_reward_model", "plus": "plusrl.training.plus:train_plus"}
"""Each trainer kind's training function, by its import path: the registry names trainers without
importing them, so the modules that look methods up (conditioning, the trainers themselves) can."""


METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in [
    MethodSpec("btl", "one reward for everyone (Bradley-Terry-Luce)", "none", "reward"),
    MethodSpec("dpl", "distributional rewards: a mean and a variance per response", "none", "reward", loss="dpl"),
    MethodSpec("vpl", "a user latent inferred from the context pairs", "latent", "reward", loss="vpl"),
    MethodSpec("oracle", "the true preference, written out", "oracle", "reward"),
    MethodSpec("icl", "the whole context in the reward model's input", "context", "reward"),
    MethodSpec("plus", "co-trained summarizer and summary-conditioned reward model", "summary", "plus"),
    MethodSpec("plus-untrained", "frozen summarizer, trained reward model", "summary", "plus",
               train_summarizer=False),
    MethodSpec("plus-static-rm", "trained summarizer, reward model frozen at a PLUS-untrained run", "summary",
               "plus", train_reward_model=False),
]}

def method_spec(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def method_config(recipe: str | Path | None = None, overrides: list[str] = ()):
    """The config a recipe and `key=value` overrides describe, as the class its method's trainer
    takes. The method is the last `method=` override, else the recipe's, else btl."""
    from plusrl.config import load_config, read_recipe

    method = next((item.split("=", 1)[1].strip() for item in reversed(overrides) if item.startswith("method=")), None)
    if method is None and recipe is not None and Path(recipe).is_file():
        method = read_recipe(Path(recipe)).get("method")
    return load_config(method_spec(method or "btl").config_class(), recipe, overrides)


def train(cfg, resume: bool = False) -> Path:
    """Train with the method's trainer; returns the run folder."""
    return method_spec(cfg.method).train_function()(cfg, resume=resume)
