"""Save and load only the weights a model trains (LoRA adapters and heads, or everything)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


class TrainedWeights:
    """Mixin for an nn.Module with a dataclass `config`.

    The set of trained weights is fixed when the model is built (`mark_trained_weights`), so a
    model frozen later (PLUS-untrained's summarizer, a static reward model) still saves and
    loads the same tensors.
    """

    weights_file: str
    config_file: str
    config_class: type

    def mark_trained_weights(self, statistics: tuple[str, ...] = ()) -> None:
        """`statistics`: buffers learned from the training data (not by gradient), saved with the weights."""
        self._trained_names = {n for n, p in self.named_parameters() if p.requires_grad} | set(statistics)

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if k in self._trained_names}

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.trained_state_dict(), folder / self.weights_file)
        (folder / self.config_file).write_text(json.dumps(asdict(self.config), indent=2))

    @classmethod
    def load_config(cls, folder: str | Path):
        """The config saved beside the weights, without building the model."""
        return cls.config_class(**json.loads((Path(folder) / cls.config_file).read_text()))

    @classmethod
    def load(cls, folder: str | Path):
        folder = Path(folder)
        model = cls(cls.load_config(folder))
        model.load_trained(load_file(folder / cls.weights_file))
        return model

    def load_trained(self, weights: dict[str, torch.Tensor]) -> None:
        _, unexpected = self.load_state_dict(weights, strict=False)
        missing = self._trained_names - set(weights)
        if unexpected or missing:
            raise RuntimeError(
                f"{type(self).__name__} weights do not match its config: unexpected={unexpected[:5]}, "
                f"missing={sorted(missing)[:5]}"
            )
