"""The public API: score responses under a user's summary, and write summaries, from your own code.

    from plusrl import PersonalizedRewardModel, Summarizer

    summarizer = Summarizer.from_pretrained("runs/pets-plus")        # or an exported folder
    (summary,) = summarizer.summarize([[{"kind": "pair", "prompt": "…", "chosen": "…", "rejected": "…"}]])
    reward_model = PersonalizedRewardModel.from_pretrained("runs/pets-plus")
    rewards = reward_model.score(summary, "Please talk about one kind of pets.", ["Dogs …", "Cats …"])

Both take a plusrl run folder (its newest checkpoint) or a folder written by `plusrl export`.
The base models inside either are whatever the run trained with: an embedded default, a local
folder or a Hugging Face id.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from plusrl.data.readers import DataError, parse_user_context
from plusrl.models.reward_model import RewardModel, RewardModelConfig
from plusrl.models.summarizer import Summarizer as SummarizerModel
from plusrl.models.summarizer import SummarizerConfig
from plusrl.run_dir import RunDir

EXPORTED_REWARD_MODEL = "reward_model"  # folders inside an export
EXPORTED_SUMMARIZER = "summarizer"
EXPORTED_BASE_MODEL = "base_model"
HEAD_FILE = "head.safetensors"
CONDITIONING_FILE = "conditioning.json"
SUMMARIZER_FILE = "summarizer.json"


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


class PersonalizedRewardModel:
    """r(response | summary): a summary-conditioned reward model, batched, without gradients."""

    def __init__(self, model: RewardModel, device: str | torch.device | None = None):
        self.model = model.to(_device(device)).eval()

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> PersonalizedRewardModel:
        path = Path(path)
        if (path / EXPORTED_REWARD_MODEL / CONDITIONING_FILE).is_file():
            path = path / EXPORTED_REWARD_MODEL
        if (path / CONDITIONING_FILE).is_file():
            return cls(_load_exported_reward_model(path), device)
        return cls(RunDir(path).reward_model(), device)

    @torch.no_grad()
    def score(self, summary: str | None, prompt: str, responses: list[str], batch_size: int = 64) -> list[float]:
        """Reward of each response to `prompt` for the user `summary` describes (None: no summary)."""
        if self.model.user_encoder is not None:
            raise DataError("this reward model (VPL) reads a user latent inferred from their past preference pairs, "
                            "not a summary: score it with plusrl eval on records that carry their context")
        if not responses:
            return []
        conditioning = None if summary is None else self.model.as_conditioning(summary)
        out = []
        for start in range(0, len(responses), batch_size):
            chunk = responses[start : start + batch_size]
            out += self.model.score(None if conditioning is None else [conditioning] * len(chunk),
                                    [prompt] * len(chunk), chunk).float().cpu().tolist()
        return out


class Summarizer:
    """Writes a text summary of each user's preferences from their context (greedy decoding)."""

    def __init__(self, summarizer: SummarizerModel, prompts: str = "generic", device: str | torch.device | None = None):
        self.summarizer = summarizer.to(_device(device)).eval()
        self.prompts = prompts

    @classmethod
    def from_pretrained(cls, path: str | Path, prompts: str | None = None,
                        device: str | torch.device | None = None) -> Summarizer:
        """`prompts`: the prompt family (pets | generic); default: the one the run trained with."""
        path = Path(path)
        if (path / SUMMARIZER_FILE).is_file():
            summarizer, trained_prompts = _load_exported_summarizer(path)
        else:
            run = RunDir(path)
            summarizer, trained_prompts = run.summarizer(), run.config().data.prompts
        return cls(summarizer, prompts or trained_prompts, device)

    @torch.no_grad()
    def summarize(self, contexts: list, batch_size: int = 16) -> list[str]:
        """One summary per context: each the JSON a user gives `plusrl summarize --context`
        ({"user_id": …, "context": [items]} or just the list of items), parsed."""
        users = [parse_user_context(c, f"contexts[{i}]") for i, c in enumerate(contexts)]
        return self.summarizer.summarize(users, self.prompts, batch_size=batch_size)

    @torch.no_grad()
    def restate(self, statements: list[str]) -> list[str]:
        """A person's own words about themselves ("I can't stand cats, but I adore dogs."), each
        restated as a summary, in the words the run's reward model learned to read."""
        if bad := [i for i, s in enumerate(statements) if not isinstance(s, str) or not s.strip()]:
            raise DataError(f"statements[{bad[0]}]: a statement must be non-empty text")
        return self.summarizer.restate(statements, self.prompts)


def _load_exported_reward_model(folder: Path) -> RewardModel:
    """A reward model as `plusrl export` wrote it: backbone in `backbone/`, head in plain files."""
    from safetensors.torch import load_file

    card = json.loads((folder / CONDITIONING_FILE).read_text())
    config = RewardModelConfig(**{**card["config"], "backbone": str(folder / "backbone"), "lora_rank": 0})
    model = RewardModel(config)
    head = load_file(folder / HEAD_FILE)
    missing, unexpected = model.load_state_dict(head, strict=False)
    if unexpected or any(not name.startswith("backbone.") for name in missing):
        raise DataError(f"{folder}: {HEAD_FILE} does not match its config (unexpected {unexpected[:3]})")
    model.use_guidance(card.get("guidance_weight", 1.0), card.get("guidance_population", []))
    return model


def _load_exported_summarizer(folder: Path) -> tuple[SummarizerModel, str]:
    """A summarizer as `plusrl export` wrote it: a PEFT adapter over the base model it names."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    card = json.loads((folder / SUMMARIZER_FILE).read_text())
    adapter_dir = folder / EXPORTED_SUMMARIZER
    base = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    if (folder / base).is_dir():  # the embedded base model, saved beside the adapter
        base = str(folder / base)
    summarizer = SummarizerModel(SummarizerConfig(**{**card["config"], "model": base}))
    set_peft_model_state_dict(summarizer.lm, load_file(adapter_dir / "adapter_model.safetensors"))
    return summarizer, card["prompts"]
