"""plusrl as a reward function for TRL's GRPOTrainer: personalized rewards for policy training.

    from trl import GRPOConfig, GRPOTrainer
    from plusrl.integrations.trl import PersonalizedReward

    reward = PersonalizedReward("runs/pets-plus")            # a run folder or a `plusrl export` folder
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=dataset, args=GRPOConfig(...))

Each dataset row names its user by a `summary` column (text), or by a `context` column (the
JSON a user gives `plusrl summarize`), summarized once per distinct context with the run's
summarizer and cached. Each completion is scored under its own row's summary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from plusrl.api import PersonalizedRewardModel, Summarizer
from plusrl.training.losses import guided_reward


def _text(message) -> str:
    """A plain string, or the last message's content of a conversational prompt/completion."""
    if isinstance(message, str):
        return message
    return message[-1]["content"] if message else ""


def personalization_margin(own: list[float], others: list[list[float]]) -> list[float]:
    """r(y | z) − mean over the other users z' of r(y | z'), per completion y.

    What every user rewards alike (the population's taste, or a completion that repeats the
    words all summaries share) cancels; what this user rewards more than the others remains.
    With no other users it is r(y | z) itself. It is `guided_reward` at w = inf, the user's part
    that guidance (plusrl.eval.guidance) weighs.
    """
    if not others:
        return list(own)
    mean = torch.tensor(others, dtype=torch.float64).mean(0)
    return guided_reward(torch.tensor(own, dtype=torch.float64), mean, float("inf")).tolist()


class PersonalizedReward:
    """reward_funcs entry: r(completion | the row's user summary), one float per completion.

    request_column: a column with the user's request as the reward model should read it, when
        the policy's prompt is more than that (App. J.1's generator prompt also holds the
        summary); without it the reward model reads the prompt's last message.
    contrast_summaries: other users' summaries; when given, each completion's reward is its
        `personalization_margin` over them instead of its raw reward.
    """

    def __init__(self, run: str | Path | PersonalizedRewardModel, summarizer: str | Path | Summarizer | None = None,
                 summary_column: str = "summary", context_column: str = "context", request_column: str | None = None,
                 contrast_summaries: Sequence[str] = ()):
        self.reward_model = run if isinstance(run, PersonalizedRewardModel) else PersonalizedRewardModel.from_pretrained(run)
        self._summarizer_source = summarizer if summarizer is not None else (None if isinstance(run, PersonalizedRewardModel)
                                                                             else run)
        self._summarizer: Summarizer | None = None
        self.summary_column, self.context_column, self.request_column = summary_column, context_column, request_column
        self.contrast_summaries = list(dict.fromkeys(contrast_summaries))
        self._summaries: dict[str, str] = {}  # context JSON → its summary
        self.__name__ = "plusrl_personalized_reward"  # TRL logs each reward function under its __name__

    def summaries_for(self, contexts: list) -> list[str]:
        """Summaries of contexts, each written once and then cached."""
        keys = [json.dumps(c, sort_keys=True) for c in contexts]
        if missing := [k for k in dict.fromkeys(keys) if k not in self._summaries]:
            if self._summarizer is None:
                if self._summarizer_source is None:
                    raise ValueError("rows give a context but no summarizer was given to summarize it")
                self._summarizer = (self._summarizer_source if isinstance(self._summarizer_source, Summarizer)
                                    else Summarizer.from_pretrained(self._summarizer_source))
            self._summaries.update(zip(missing, self._summarizer.summarize([json.loads(k) for k in missing])))
        return [self._summaries[k] for k in keys]

    def __call__(self, prompts: list, completions: list, **columns) -> list[float]:
        if self.summary_column in columns:
            summaries = list(columns[self.summary_column])
        elif self.context_column in columns:
            summaries = self.summaries_for(columns[self.context_column])
        else:
            raise KeyError(f"each row needs a {self.summary_column!r} or a {self.context_column!r} column")
        if self.request_column is not None and self.request_column not in columns:
            raise KeyError(f"request_column {self.request_column!r} is not a column of the dataset")
        requests = columns[self.request_column] if self.request_column is not None else prompts
        rewards = [0.0] * len(completions)
        groups: dict[tuple[str, str], list[int]] = {}  # rows sharing a (summary, request) are scored together
        for i, (summary, request) in enumerate(zip(summaries, requests, strict=True)):
            groups.setdefault((summary, _text(request)), []).append(i)
        for (summary, request), rows in groups.items():
            texts = [_text(completions[i]) for i in rows]
            others = [self.reward_model.score(other, request, texts) for other in self.contrast_summaries
                      if other != summary]
            for i, reward in zip(rows, personalization_margin(self.reward_model.score(summary, request, texts), others)):
                rewards[i] = reward
        return rewards
