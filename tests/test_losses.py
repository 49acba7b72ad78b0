"""Losses against values computed by hand."""

import math

import pytest
import torch

from plusrl.training.losses import bradley_terry_loss, preference_accuracy


def test_bradley_terry_loss_matches_hand_computation():
    # -log σ(1) = log(1 + e^-1) = 0.313262 ; -log σ(0) = log 2 = 0.693147 ; -log σ(-2) = 2.126928
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0]))
    expected = (math.log1p(math.exp(-1)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert abs(loss.item() - expected) < 1e-6
    assert abs(expected - (0.313262 + 0.693147 + 2.126928) / 3) < 1e-5


def test_bradley_terry_loss_is_stable_for_large_margins():
    loss = bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([200.0]))
    assert torch.isfinite(loss) and abs(loss.item() - 400.0) < 1e-3
    assert bradley_terry_loss(torch.tensor([200.0]), torch.tensor([-200.0])).item() < 1e-6


def test_bradley_terry_gradient_pushes_chosen_up():
    r_c = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(r_c, torch.tensor([0.0])).backward()
    assert abs(r_c.grad.item() - (-0.5)) < 1e-6  # d/dx -log σ(x) at 0 = -(1 - σ(0)) = -0.5


def test_accuracy_counts_ties_as_wrong():
    assert preference_accuracy(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])).item() == pytest.approx(1 / 3)
