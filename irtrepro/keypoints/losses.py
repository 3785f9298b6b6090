"""Losses of the keypoint models: Adaptive Wing on heatmaps and L1 on the latent.

Adaptive Wing (Wang, Bo & Fuxin 2019, ICCV, eq. 8) for a target heatmap value ``y`` in [0, 1] and
prediction ``p``, with ``d = |y - p|``::

    AWing = omega * ln(1 + (d / eps) ** (alpha - y))          if d < theta
            A * d - C                                          otherwise
    A = omega / (1 + (theta / eps) ** (alpha - y)) * (alpha - y) * (theta / eps) ** (alpha - y - 1) / eps
    C = theta * A - omega * ln(1 + (theta / eps) ** (alpha - y))

with the published defaults alpha = 2.1, omega = 14, eps = 1, theta = 0.5. Averaged over pixels.
"""

from __future__ import annotations

AWING_DEFAULTS = {"alpha": 2.1, "omega": 14.0, "epsilon": 1.0, "theta": 0.5}


def adaptive_wing(pred, target, *, alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0,
                  theta: float = 0.5, weight=None):
    """Adaptive Wing loss (mean over elements).

    Parameters
    ----------
    pred, target : torch.Tensor (N, K, h, w)
        Heatmaps; ``target`` in [0, 1] (values outside are clipped, since ``alpha - y`` must stay
        positive).
    weight : torch.Tensor (N, K), optional
        Per-keypoint weights (0 for unlabelled keypoints); the mean runs over weighted maps.
    """
    import torch

    y = target.clamp(0.0, 1.0)
    d = (y - pred).abs()
    e = alpha - y
    r = theta / epsilon
    a = omega * (1 / (1 + r ** e)) * e * (r ** (e - 1)) / epsilon
    c = theta * a - omega * torch.log1p(r ** e)
    loss = torch.where(d < theta, omega * torch.log1p((d / epsilon) ** e), a * d - c)
    if weight is None:
        return loss.mean()
    w = weight[..., None, None].to(loss.dtype)
    return (loss * w).sum() / (w.sum() * loss.shape[-1] * loss.shape[-2]).clamp_min(1.0)


def latent_l1(z_student, z_teacher):
    """Mean absolute difference between student and teacher latents (the distillation term)."""
    return (z_student - z_teacher).abs().mean()


def distillation_loss(z_s, z_t, hm_s, hm_t, *, beta: float = 0.4):
    """``beta * L1(latent) + (1 - beta) * AdaptiveWing(heatmaps)`` (the published composite)."""
    return beta * latent_l1(z_s, z_t) + (1 - beta) * adaptive_wing(hm_s, hm_t)
