"""Categorical latents (wmlib.model.categorical): the balanced KL by hand, exact sampling, straight-through, unimix."""
import math

import pytest
import torch

from wmlib.model.categorical import (
    exponential_noise,
    kl_balance,
    sample_index,
    straight_through_sample,
    unimix_log_probs,
)
from wmlib.model.models import RSSM, ModelConfig


def tiny(**overrides) -> ModelConfig:
    return ModelConfig.preset("tiny", **overrides)


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def kl_by_hand(post_rows, prior_rows):
    """KL(post || prior) summed over variables, from lists of per-variable logits."""
    total = 0.0
    for post, prior in zip(post_rows, prior_rows):
        p, q = softmax(post), softmax(prior)
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    return total


def test_kl_balance_against_hand_computation():
    # Two steps, two variables, three classes: step 0 is far from its prior, step 1 close (clipped by free nats).
    post = [[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], [[0.1, 0.0, 0.0], [0.0, 0.2, 0.0]]]
    prior = [[[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]], [[0.0, 0.0, 0.1], [0.0, 0.0, 0.2]]]
    kls = [kl_by_hand(post[i], prior[i]) for i in range(2)]
    free_nats = 0.5
    assert kls[0] > free_nats > kls[1]  # the example exercises both sides of the clip
    clipped = sum(max(free_nats, kl) for kl in kls) / 2
    post_logits = torch.tensor(post, requires_grad=True)
    prior_logits = torch.tensor(prior, requires_grad=True)
    loss, parts = kl_balance(post_logits, prior_logits, dyn_scale=0.5, rep_scale=0.1, free_nats=free_nats)
    assert loss.item() == pytest.approx(0.5 * clipped + 0.1 * clipped, rel=1e-5)
    assert parts["kl"].item() == pytest.approx(sum(kls) / 2, rel=1e-5)
    assert parts["kl_dyn"].item() == pytest.approx(clipped, rel=1e-5)
    assert parts["kl_rep"].item() == pytest.approx(clipped, rel=1e-5)

    # The dynamics term trains only the prior, the representation term only the posterior; clipped steps neither.
    for dyn_scale, rep_scale, trained, frozen in ((1.0, 0.0, prior_logits, post_logits),
                                                  (0.0, 1.0, post_logits, prior_logits)):
        post_logits.grad = prior_logits.grad = None
        kl_balance(post_logits, prior_logits, dyn_scale, rep_scale, free_nats)[0].backward()
        assert frozen.grad is None or frozen.grad.abs().sum() == 0
        assert trained.grad[0].abs().sum() > 0 and trained.grad[1].abs().sum() == 0


def test_straight_through_sample_is_one_hot_with_gradients():
    torch.manual_seed(0)
    logits = torch.randn(5, 4, 6, requires_grad=True)
    probs = logits.softmax(-1)
    sample = straight_through_sample(probs, exponential_noise(probs.shape))
    assert set(sample.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(sample.detach().sum(-1), torch.ones(5, 4))
    (sample * torch.randn_like(sample)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    mode = straight_through_sample(probs.detach())
    assert torch.equal(mode.argmax(-1), probs.argmax(-1))


def test_sample_index_draws_from_probs():
    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.2, 0.7]).expand(20_000, 3)
    counts = torch.bincount(sample_index(probs, exponential_noise(probs.shape)), minlength=3) / 20_000
    assert torch.allclose(counts, torch.tensor([0.1, 0.2, 0.7]), atol=0.015)


def test_unimix_keeps_every_probability_above_the_floor():
    unimix, classes = 0.01, 16
    logits = torch.full((3, classes), -100.0)
    logits[:, 0] = 100.0
    probs = unimix_log_probs(logits, unimix).exp()
    assert probs.min() >= unimix / classes * (1 - 1e-5)
    assert torch.allclose(probs.sum(-1), torch.ones(3))
    # and inside the RSSM, for both posterior and prior
    config = tiny(unimix=unimix)
    rssm = RSSM(config)
    with torch.no_grad():
        rssm.posterior_out.weight.mul_(1000.0)  # push the posterior toward certainty
        observed = rssm.observe(torch.randn(2, 6, config.embed_dim))
    floor = unimix / config.stoch_classes * (1 - 1e-5)
    assert observed["post_logits"].exp().min() >= floor and observed["prior_logits"].exp().min() >= floor
