"""Losses against values computed by hand."""

import math

import pytest
import torch

from plusrl.training.losses import bradley_terry_loss, guided_reward, preference_accuracy, summary_nll


def test_bradley_terry_loss_matches_hand_computation():
    # -log σ(1) = log(1 + e^-1) = 0.313262 ; -log σ(0) = log 2 = 0.693147 ; -log σ(-2) = 2.126928
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0]))
    expected = (math.log1p(math.exp(-1)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert abs(loss.item() - expected) < 1e-6
    assert abs(expected - (0.313262 + 0.693147 + 2.126928) / 3) < 1e-5


def test_guided_reward_scales_only_the_users_part():
    own, population = torch.tensor([3.0, -1.0]), torch.tensor([1.0, 1.0])
    assert guided_reward(own, population, 1.0).tolist() == [3.0, -1.0]  # the reward as trained
    assert guided_reward(own, population, 2.0).tolist() == [5.0, -3.0]  # 1 + 2·2, 1 + 2·(−2)
    assert guided_reward(own, population, float("inf")).tolist() == [2.0, -2.0]  # r − r̄ alone
    # every user ranks B first by 2 (r̄); this user's text lifts A by 1.5: B wins at w = 1, A at w = 2
    population, own = torch.tensor([0.0, 2.0]), torch.tensor([1.5, 2.0])
    assert guided_reward(own, population, 1.0).argmax() == 1
    assert guided_reward(own, population, 2.0).tolist() == [3.0, 2.0]


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


# -- summarizer RL, each against numbers worked out by hand -----------------------------------

from plusrl.training.losses import (
    gae_advantages,
    group_advantages,
    kl_k1,
    normalize_advantages,
    ppo_clip_loss,
    summary_return,
    token_rewards,
    value_loss,
)


def test_summary_return_is_log_sigmoid_of_margin_clipped():
    r = summary_return(torch.tensor([2.0, 0.0, -30.0]), torch.tensor([0.0, 0.0, 0.0]))
    assert r[0].item() == pytest.approx(-math.log1p(math.exp(-2)), abs=1e-6)  # -0.126928
    assert r[1].item() == pytest.approx(-math.log(2), abs=1e-6)
    assert r[2].item() == -10.0  # log σ(-30) ≈ -30, clipped to the App. H range


def test_token_rewards_put_return_on_last_real_token_and_kl_everywhere():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    kl = torch.tensor([[0.5, 0.0, -1.0], [1.0, 2.0, 9.0]])
    r = token_rewards(torch.tensor([-1.0, -2.0]), kl, mask, kl_coef=0.1)
    expected = torch.tensor([[-0.05, 0.0, 0.1 - 1.0], [-0.1, -0.2 - 2.0, 0.0]])
    torch.testing.assert_close(r, expected)
    assert kl_k1(torch.tensor([-1.0]), torch.tensor([-1.5])).item() == 0.5


def test_gae_matches_hand_computation():
    # one summary of 3 tokens, γ = 1, λ = 0.5; V = [1, 2, 3], V after the end = 0, r = [0, 0, 6]
    # δ = [0 + 2 - 1, 0 + 3 - 2, 6 + 0 - 3] = [1, 1, 3]
    # A_2 = 3; A_1 = 1 + 0.5·3 = 2.5; A_0 = 1 + 0.5·2.5 = 2.25; returns = A + V
    rewards = torch.tensor([[0.0, 0.0, 6.0, 0.0]])
    values = torch.tensor([[1.0, 2.0, 3.0, 7.0]])  # the 7 sits on padding and must be ignored
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = gae_advantages(rewards, values, mask, gamma=1.0, lam=0.5)
    torch.testing.assert_close(adv, torch.tensor([[2.25, 2.5, 3.0, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[3.25, 4.5, 6.0, 0.0]]))


def test_gae_with_lambda_one_and_zero_values_is_the_return_to_go():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    adv, _ = gae_advantages(rewards, torch.zeros(1, 3), torch.ones(1, 3), gamma=1.0, lam=1.0)
    torch.testing.assert_close(adv, torch.tensor([[6.0, 5.0, 3.0]]))


def test_normalize_advantages_whitens_real_tokens_only():
    adv = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    out = normalize_advantages(adv, mask)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 1.0, 0.0]]), atol=1e-6, rtol=0)


def test_ppo_clip_loss_by_hand():
    # ratios e^{log 1.5} = 1.5 and e^{log 0.5} = 0.5, advantages +1 and -1, ε = 0.2
    # token 0: min(1.5·1, 1.2·1) = 1.2 ; token 1: min(0.5·-1, 0.8·-1) = -0.8 ; loss = -(1.2 - 0.8)/2 = -0.2
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.5, 0.5]]))
    loss, clipfrac = ppo_clip_loss(new, old, torch.tensor([[1.0, -1.0]]), torch.ones(1, 2), clip_eps=0.2)
    assert loss.item() == pytest.approx(-0.2, abs=1e-6)
    assert clipfrac.item() == 1.0


def test_ppo_clip_loss_gradient_is_zero_once_clipped_in_the_favoured_direction():
    new = torch.log(torch.tensor([[1.5]])).requires_grad_()
    loss, _ = ppo_clip_loss(new, torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1))
    loss.backward()
    assert new.grad.item() == 0.0


def test_value_loss_takes_the_larger_of_clipped_and_unclipped_error():
    # V_old = 0, V = 1, R = 2, ε = 0.2: unclipped (1-2)² = 1, clipped (0.2-2)² = 3.24 → ½·3.24
    loss = value_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]), torch.ones(1, 1))
    assert loss.item() == pytest.approx(1.62)


def test_group_advantages_rloo_and_grpo():
    returns = torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 10.0])
    # RLOO: 1 - (2+3)/2 = -1.5 ; 2 - 2 = 0 ; 3 - 1.5 = 1.5 ; identical returns give 0
    torch.testing.assert_close(group_advantages(returns, 3, "rloo"), torch.tensor([-1.5, 0.0, 1.5, 0.0, 0.0, 0.0]))
    grpo = group_advantages(returns, 3, "grpo")  # (x - 2) / std([1,2,3]) = (x - 2) / 1
    torch.testing.assert_close(grpo, torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]), atol=1e-5, rtol=0)


def test_dpl_loss_is_minus_log_probit_of_the_standardised_margin():
    from plusrl.training.losses import dpl_loss

    # μ_A - μ_B = 1, σ_A² = σ_B² = 0.5 → z = 1 → -log Φ(1) = -log 0.841345 = 0.172753
    half = torch.tensor([math.log(0.5)])
    loss = dpl_loss(torch.tensor([1.0]), half, torch.tensor([0.0]), half)
    assert abs(loss.item() - 0.172753) < 1e-5
    # equal means: Φ(0) = ½ whatever the variances → log 2
    assert abs(dpl_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.ones(1)).item() - math.log(2)) < 1e-6
    # a wider spread makes the same margin less certain
    wide = dpl_loss(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([2.0]))
    assert wide.item() > loss.item()


def test_gaussian_kl_by_hand():
    from plusrl.training.losses import gaussian_kl

    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    # one dimension, μ = 1, σ² = e: ½(1 + e - 1 - 1) = ½(e - 1) = 0.859141
    assert abs(gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[1.0]])).item() - 0.859141) < 1e-5


def test_summary_nll_averages_over_real_target_tokens_only():
    # (1 + 3 + 2) / 3 = 2: the padded position (-9) does not count
    logprobs = torch.tensor([[-1.0, -3.0], [-2.0, -9.0]])
    assert summary_nll(logprobs, torch.tensor([[1.0, 1.0], [1.0, 0.0]])).item() == 2.0
