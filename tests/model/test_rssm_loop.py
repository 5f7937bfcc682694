"""The RSSM's fused time loop (wmlib.model.rssm_loop): values and every gradient against the plain per-step loop."""
import pytest
import torch
import torch.nn.functional as F

from wmlib.model.categorical import exponential_noise, kl_balance, straight_through_sample
from wmlib.model.models import RSSM, ModelConfig


def tiny(**overrides) -> ModelConfig:
    return ModelConfig.preset("tiny", **overrides)


def reference_observe(rssm: RSSM, embeddings: torch.Tensor, noise: torch.Tensor) -> dict:
    """The RSSM's posterior loop written plainly (every layer per step, plain autograd), for comparison."""
    c = rssm.config
    batch, length, _ = embeddings.shape
    deter = torch.zeros(batch, c.deter_dim)
    deters, stochs, post_logits = [], [], []
    for t in range(length):
        gates_from_deter, posterior_from_deter = rssm.from_deter(deter).split([3 * c.deter_dim, c.hidden_dim], -1)
        hidden = F.silu(rssm.posterior_norm(posterior_from_deter + rssm.posterior_from_embedding(embeddings[:, t])))
        probs = rssm._mixed_probs(rssm.posterior_out(hidden))
        stoch = straight_through_sample(probs, noise[t]).flatten(-2)
        deters.append(deter)
        stochs.append(stoch)
        post_logits.append(probs.log())
        gates = rssm.gru_norm(gates_from_deter + rssm.gru_from_stoch(stoch))  # [reset | update | candidate]
        reset, update = torch.sigmoid(gates[:, : 2 * c.deter_dim]).chunk(2, -1)
        candidate = torch.tanh(reset * gates[:, 2 * c.deter_dim :])
        deter = deter + update * (candidate - deter)
    deter = torch.stack(deters, 1)
    stoch = torch.stack(stochs, 1)
    prior_logits, prior_feature = rssm._prior(deter)
    return {"feature": torch.cat([deter, stoch], -1), "prior_feature": prior_feature,
            "post_logits": torch.stack(post_logits, 1), "prior_logits": prior_logits}


@pytest.mark.parametrize("length", [9, 1])
def test_rssm_fast_loop_matches_the_plain_loop(length):
    """Values and every gradient of the fused loop (one autograd node) equal those of a plain per-step loop."""
    torch.manual_seed(0)
    config = tiny()
    rssm = RSSM(config)
    embeddings = torch.randn(3, length, config.embed_dim, requires_grad=True)
    weights = {key: torch.randn(3, length, dim) for key, dim in (("feature", rssm.feature_dim),
                                                                 ("prior_feature", rssm.feature_dim))}

    def run(observe):
        outputs = observe()
        loss = sum((outputs[key] * weight).sum() for key, weight in weights.items())
        loss = loss + kl_balance(outputs["post_logits"], outputs["prior_logits"], free_nats=0.0)[0]
        rssm.zero_grad()
        embeddings.grad = None
        loss.backward()
        grads = {name: torch.zeros_like(p) if p.grad is None else p.grad.clone()  # None: unused (the GRU at T=1)
                 for name, p in rssm.named_parameters()}
        return outputs, grads, embeddings.grad.clone()

    torch.manual_seed(1)
    fast, fast_grads, fast_input_grad = run(lambda: rssm.observe(embeddings, sample=True))
    torch.manual_seed(1)
    noise = exponential_noise((length, 3, config.stoch_vars, config.stoch_classes))
    plain, plain_grads, plain_input_grad = run(lambda: reference_observe(rssm, embeddings, noise))
    for key in plain:
        assert torch.allclose(fast[key], plain[key], atol=1e-5), key
    for name in plain_grads:
        assert torch.allclose(fast_grads[name], plain_grads[name], atol=1e-5, rtol=1e-4), name
    assert torch.allclose(fast_input_grad, plain_input_grad, atol=1e-5, rtol=1e-4)


def test_rssm_loop_survives_retain_graph():
    """A second backward over the same graph adds the same gradient again (the loop's saved steps survive it)."""
    torch.manual_seed(0)
    rssm = RSSM(tiny())
    embeddings = torch.randn(2, 6, rssm.config.embed_dim)
    loss = rssm.observe(embeddings)["feature"].square().sum()
    loss.backward(retain_graph=True)
    first = {name: p.grad.clone() for name, p in rssm.named_parameters() if p.grad is not None}
    assert {"from_deter.weight", "posterior_out.weight", "gru_from_stoch.weight"} <= set(first)
    loss.backward()
    for name, grad in first.items():
        assert torch.allclose(dict(rssm.named_parameters())[name].grad, 2 * grad, atol=1e-6), name
