"""Categorical latents (DreamerV2/V3): 1% unimix, exact sampling, straight-through gradients, balanced KL.

The RSSM's stochastic state is S variables of C classes each; these functions are its arithmetic, shared by
:class:`wmlib.model.models.RSSM` and by the fused loop in :mod:`wmlib.model.rssm_loop`.  Shapes end in ``(S, C)``
(or ``(C,)``) as each docstring says.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def unimix_log_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Log-probabilities of ``(1 - unimix) * softmax(logits) + unimix / classes`` over the last axis.

    DreamerV3's 1% uniform mix: no class probability falls below ``unimix / classes``, so KL terms stay finite
    and the prior never becomes certain.
    """
    probs = logits.softmax(-1)
    return ((1.0 - unimix) * probs + unimix / logits.shape[-1]).log()


def exponential_noise(shape, device=None) -> torch.Tensor:
    """``Exp(1)`` noise for :func:`sample_index` (float32; ``-log(1 - U)``, faster than ``Tensor.exponential_``)."""
    return torch.rand(shape, device=device).neg_().log1p_().neg_().clamp_(min=1e-12)


def sample_index(probs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The sampled class ``(...)`` of the categorical ``probs`` ``(..., C)``.

    ``argmax(probs / noise)`` with ``Exp(1)`` noise is an exact sample (the exponential race: the Gumbel-max trick
    without the logarithm).  ``noise=None`` takes the mode.
    """
    return probs.argmax(-1) if noise is None else (probs / noise).argmax(-1)


def straight_through_sample(probs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """A one-hot sample of the categorical ``probs`` (last axis), with straight-through gradients.

    Forward: exactly one-hot.  Backward: the gradient of ``probs`` (the sample is ``one_hot + probs - sg(probs)``).

    Args:
        probs: ``(..., C)`` probabilities.
        noise: ``Exp(1)`` noise of the same shape (:func:`exponential_noise`); ``None`` takes the mode.

    Returns:
        ``(..., C)`` one-hot tensor.
    """
    one_hot = F.one_hot(sample_index(probs, noise), probs.shape[-1]).to(probs.dtype)
    return one_hot + (probs - probs.detach())  # exactly one-hot in value


def categorical_kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of log-probabilities ``(..., S, C)``, summed over classes and variables: ``(...)``."""
    return (p_log.exp() * (p_log - q_log)).sum((-2, -1))


def kl_balance(post_logits: torch.Tensor, prior_logits: torch.Tensor, dyn_scale: float = 0.5,
               rep_scale: float = 0.1, free_nats: float = 1.0) -> tuple[torch.Tensor, dict]:
    """DreamerV3's balanced KL between posterior and prior of categorical latents.

    ``dyn = KL(sg(post) || prior)`` trains the prior toward the posterior; ``rep = KL(post || sg(prior))`` keeps the
    posterior predictable.  Each is summed over variables, then clipped below at ``free_nats`` per step
    (``max(free_nats, kl)``: no gradient while the KL is already small), then averaged over steps.

    Args:
        post_logits: ``(..., S, C)`` posterior logits (any normalisation; log-softmax is taken here).
        prior_logits: ``(..., S, C)`` prior logits.
        dyn_scale, rep_scale: weights of the two terms (0.5 and 0.1 in DreamerV3).
        free_nats: the clip.

    Returns:
        ``(loss, parts)``: ``loss = dyn_scale * mean(dyn) + rep_scale * mean(rep)`` with the clipped terms;
        ``parts`` holds detached ``kl`` (mean unclipped KL, in nats), ``kl_dyn`` and ``kl_rep`` (clipped means).
    """
    assert post_logits.shape == prior_logits.shape, (
        f"posterior {tuple(post_logits.shape)} and prior {tuple(prior_logits.shape)} shapes differ")
    post_log, prior_log = post_logits.log_softmax(-1), prior_logits.log_softmax(-1)
    dyn = categorical_kl(post_log.detach(), prior_log).clamp(min=free_nats)  # (...)
    rep = categorical_kl(post_log, prior_log.detach()).clamp(min=free_nats)  # (...)
    loss = dyn_scale * dyn.mean() + rep_scale * rep.mean()
    with torch.no_grad():
        kl = categorical_kl(post_log, prior_log).mean()
    return loss, {"kl": kl, "kl_dyn": dyn.detach().mean(), "kl_rep": rep.detach().mean()}
