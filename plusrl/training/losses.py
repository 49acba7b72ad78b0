"""The losses and RL estimators of PLUS as small pure functions (each unit-tested by hand)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Eq. 3: -log σ(r(s_A|z) - r(s_B|z)), averaged over the batch."""
    return -F.logsigmoid(reward_chosen - reward_rejected).mean()


def preference_accuracy(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Share of pairs the model orders correctly; ties count as wrong."""
    return (reward_chosen > reward_rejected).float().mean()
