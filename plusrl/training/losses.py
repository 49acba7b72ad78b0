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


def dpl_loss(mean_chosen: torch.Tensor, logvar_chosen: torch.Tensor, mean_rejected: torch.Tensor,
             logvar_rejected: torch.Tensor) -> torch.Tensor:
    """DPL mean-and-variance (Siththaranjan et al. 2024): each response's utility over users is
    N(μ, σ²), so P(A ≻ B) = Φ((μ_A - μ_B) / sqrt(σ_A² + σ_B²)); the loss is -log of that."""
    scale = (logvar_chosen.exp() + logvar_rejected.exp()).sqrt()
    return -torch.special.log_ndtr((mean_chosen - mean_rejected) / scale).mean()


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, I)) summed over latent dimensions, averaged over the batch (VPL's prior term)."""
    return (0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar)).sum(-1).mean()


def guided_reward(own: torch.Tensor, population: torch.Tensor, weight: float) -> torch.Tensor:
    """r̄(s) + w·(r(s|c) − r̄(s)), r̄ the mean reward over other users' conditioning texts: the part of
    the reward that depends on this user's text, scaled by w (classifier-free guidance, Ho & Salimans
    2022, read for rewards). w = 1 gives r(s|c); w = inf keeps r − r̄ alone. (3, 1, w=2) → 5."""
    personal = own - population
    return personal if weight == float("inf") else population + weight * personal


# -- summarizer RL (Eq. 4-6) ----------------------------------------------------------------


def summary_return(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor, clip: float = 10.0) -> torch.Tensor:
    """Eq. 4 at t = H: log σ(r(s_A|z) - r(s_B|z)), clipped to [-clip, clip] (App. H)."""
    return F.logsigmoid(reward_chosen - reward_rejected).clamp(-clip, clip)


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k1 estimate of KL(π || π_ref): log π(z_t) - log π_ref(z_t)."""
    return logprobs - ref_logprobs


def token_rewards(final_return: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards: -β·KL at every token, plus the summary's return on its last token."""
    rewards = -kl_coef * kl * mask
    last = mask.sum(1).long().clamp(min=1) - 1
    rewards[torch.arange(len(rewards)), last] += final_return
    return rewards


def gae_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5: A_t = Σ_i (γλ)^i δ_{t+i}, δ_t = r_t + γ V_{t+1} - V_t; V after the last token is 0.

    Returns (advantages, returns = advantages + values); both 0 on padding.
    """
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]  # right padding: zero past the end
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def summary_nll(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Supervised loss of the reading warm-up: −log π(z_t | c, z_<t) averaged over the target
    summaries' real tokens. logprobs [[-1, -3], [-2, -9]], mask [[1, 1], [1, 0]] → 2."""
    return -masked_mean(logprobs, mask)


def normalize_advantages(advantages: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Whiten over the batch's real tokens (App. H: advantages normalised across batches)."""
    mean = masked_mean(advantages, mask)
    var = masked_mean((advantages - mean) ** 2, mask)
    return (advantages - mean) / (var.sqrt() + eps) * mask


def ppo_clip_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip_eps: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6: -E_t[min(ζ_t A_t, clip(ζ_t, 1-ε, 1+ε) A_t)], ζ_t = π_θ / π_old. Also the clipped fraction."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages
    loss = -masked_mean(torch.minimum(unclipped, clipped), mask)
    clip_fraction = masked_mean(((ratio - 1).abs() > clip_eps).float(), mask)
    return loss, clip_fraction


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip_eps: float = 0.2) -> torch.Tensor:
    """Clipped critic loss (as in OpenRLHF / PPO2): ½ max((V - R)², (V_clip - R)²)."""
    clipped = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def group_advantages(returns: torch.Tensor, group_size: int, estimator: str) -> torch.Tensor:
    """Critic-free baselines over `group_size` summaries of the same context (consecutive rows).

    rloo: R_i - mean of the other k-1 returns.  grpo: (R_i - mean) / (std + eps).
    """
    grouped = returns.view(-1, group_size)
    if estimator == "rloo":
        baseline = (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
        return (grouped - baseline).view(-1)
    if estimator == "grpo":
        return ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-6)).view(-1)
    raise ValueError(f"unknown group estimator {estimator!r} (rloo | grpo)")
