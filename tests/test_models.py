"""The world model and the MAE control: shapes, gradients, the KL by hand, sampling, causality, and learning.

Everything runs on the ``tiny`` preset on the CPU (the whole file takes well under a minute).
"""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from wmlib.models import (
    DYNAMICS, OBJECTIVES, SIZES, Block, MaskedAutoencoder, ModelConfig, RSSM, WorldModel, build_model,
    count_parameters, denormalise_tokens, exponential_noise, parameter_groups, kl_balance, normalise_tokens, sample_index,
    straight_through_sample, symexp, symlog, unimix_log_probs)

PROTOTYPES = 8


def tiny(**overrides) -> ModelConfig:
    return ModelConfig.preset("tiny", **overrides)


def random_tokens(batch=3, length=10, seed=0) -> torch.Tensor:
    """Log-mel-like tokens in dB, ``(B, T, 64, 4)``."""
    generator = torch.Generator().manual_seed(seed)
    return -60.0 + 20.0 * torch.randn(batch, length, 64, 4, generator=generator)


def cycle_data(batch=16, length=12, noise_db=2.0, seed=0):
    """Tokens drawn from 8 prototype patterns in a fixed cycle (random phase per sequence), plus small noise.

    Returns ``(tokens (B, T, 64, 4), labels (B, T), prototypes (8, 64, 4))``; the next prototype is always
    ``(label + 1) % 8``, so next-token retrieval among the 8 prototypes has chance level 1/8.
    """
    generator = torch.Generator().manual_seed(seed)
    prototypes = -80.0 + 80.0 * torch.rand(PROTOTYPES, 64, 4, generator=torch.Generator().manual_seed(1234))
    phase = torch.randint(0, PROTOTYPES, (batch, 1), generator=generator)
    labels = (phase + torch.arange(length)) % PROTOTYPES  # (B, T)
    tokens = prototypes[labels] + noise_db * torch.randn(batch, length, 64, 4, generator=generator)
    return tokens, labels, prototypes


# ---------------------------------------------------------------------------------------------------------------
# Config, scaling, helpers


def test_presets_and_config():
    assert ModelConfig() == ModelConfig.preset("default")
    assert {"default", "large"} <= set(SIZES)
    config = ModelConfig.preset("tiny", dynamics="transformer", objective="both", d_model=48)
    assert config.d_model == 48 and config.dynamics == "transformer" and config.embed_dim == SIZES["tiny"]["embed_dim"]
    assert ModelConfig(**json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(AssertionError, match="unknown preset"):
        ModelConfig.preset("huge")
    with pytest.raises(AssertionError, match="objective"):
        ModelConfig(objective="autoregressive")
    with pytest.raises(AssertionError, match="dynamics"):
        ModelConfig(dynamics="lstm")


def test_scaling_round_trips():
    tokens = torch.tensor([-100.0, -50.0, 0.0, 10.0])
    assert torch.allclose(normalise_tokens(tokens), torch.tensor([-2.0, 0.0, 2.0, 2.4]))
    assert torch.allclose(denormalise_tokens(normalise_tokens(tokens)), tokens)
    x = torch.linspace(-5, 5, 11)
    assert torch.allclose(symexp(symlog(x)), x, atol=1e-5)


def test_build_model_and_count_parameters():
    model = build_model(tiny())
    assert isinstance(model, WorldModel) and isinstance(model.dynamics, RSSM)
    assert isinstance(build_model(tiny(architecture="masked_autoencoder")), MaskedAutoencoder)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0


def test_bad_tokens_are_refused():
    model = build_model(tiny())
    with pytest.raises(AssertionError, match="tokens must be"):
        model.loss(torch.zeros(2, 8, 32, 4))


# ---------------------------------------------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_loss_and_output_shapes(dynamics, objective):
    torch.manual_seed(0)
    config = tiny(dynamics=dynamics, objective=objective)
    model = build_model(config)
    batch, length = 3, 10
    tokens = random_tokens(batch, length)
    loss, metrics = model.loss(tokens)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(value.ndim == 0 and not value.requires_grad for value in metrics.values())
    expected = {"loss", "readout"}
    expected |= {"kl_balance", "kl", "kl_dyn", "kl_rep"} if dynamics == "rssm" else {"next_embedding"}
    if config.contrastive:
        expected |= {"contrastive"} | {f"{name}_h{k}" for name in ("contrastive", "accuracy")
                                       for k in range(1, config.predict_horizons + 1)}
    if config.reconstruction:
        expected |= {"reconstruction"}
    assert set(metrics) == expected

    model.eval()
    feature_dim = model.dynamics.feature_dim
    observed = model.observe(tokens)
    assert observed["embedding"].shape == (batch, length, config.embed_dim)
    assert observed["feature"].shape == observed["prior_feature"].shape == (batch, length, feature_dim)
    latents = model.features(tokens)
    assert {"embedding", "deter", "prior", "feature", "prior_feature"} <= set(latents)
    assert all(value.shape[:2] == (batch, length) for value in latents.values())
    if dynamics == "rssm":
        stoch = config.stoch_vars * config.stoch_classes
        assert latents["stoch"].shape == latents["prior"].shape == (batch, length, stoch)
        assert observed["post_logits"].shape == (batch, length, config.stoch_vars, config.stoch_classes)
        assert torch.allclose(latents["stoch"].unflatten(-1, (config.stoch_vars, -1)).sum(-1), torch.ones(1))

    horizon = 4
    imagined = model.imagine(tokens[:, :5], horizon, sample=True)
    assert imagined["feature"].shape == imagined["prior_feature"].shape == (batch, horizon, feature_dim)
    assert model.decode(imagined["feature"]).shape == (batch, horizon, 64, 4)
    assert model.decode(observed["feature"]).shape == tokens.shape

    if config.contrastive:
        assert model.embed(tokens).shape == (batch, length, config.proj_dim)
        for k in (1, 2, 3):
            predicted = model.predict_next_embeddings(tokens, k)
            assert predicted.shape == (batch, length - k, config.proj_dim)
            assert torch.allclose(predicted.norm(dim=-1), torch.ones(1), atol=1e-5)
        assert model.predict_next_embeddings(tokens, 2, method="head").shape == (batch, length - 2, config.proj_dim)
    else:
        with pytest.raises(AssertionError, match="no contrastive heads"):
            model.embed(tokens)


def test_rssm_observe_and_imagine_shapes():
    config = tiny()
    rssm = RSSM(config)
    observed = rssm.observe(torch.randn(2, 7, config.embed_dim))
    stoch = config.stoch_vars * config.stoch_classes
    assert observed["deter"].shape == (2, 7, config.deter_dim) and observed["stoch"].shape == (2, 7, stoch)
    assert observed["prior_logits"].shape == observed["post_logits"].shape == (2, 7, config.stoch_vars,
                                                                                config.stoch_classes)
    state = {"deter": observed["deter"][:, -1], "stoch": observed["stoch"][:, -1]}
    imagined = rssm.imagine(state, 5)
    assert imagined["deter"].shape == (2, 5, config.deter_dim) and imagined["stoch"].shape == (2, 5, stoch)
    assert imagined["feature"].shape == (2, 5, config.deter_dim + stoch)


def test_transformer_imagines_past_max_len():
    model = build_model(tiny(dynamics="transformer", max_len=16)).eval()
    imagined = model.imagine(random_tokens(2, 12), 10)
    assert imagined["feature"].shape == (2, 10, model.config.d_model)
    assert imagined["embedding"].shape == (2, 10, model.config.embed_dim)
    with pytest.raises(AssertionError, match="max_len"):
        model.observe(random_tokens(2, 16))


# ---------------------------------------------------------------------------------------------------------------
# Gradients


def missing_gradients(module: torch.nn.Module) -> list[str]:
    """Names of trainable parameters whose gradient is missing, not finite, or all zero."""
    return [name for name, p in module.named_parameters() if p.requires_grad and (
        p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0)]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_every_parameter_gets_a_gradient(dynamics, objective):
    torch.manual_seed(0)
    # free_nats=0: below the free nats the KL sends the prior no gradient at all, by design (tested by hand below)
    model = build_model(tiny(dynamics=dynamics, objective=objective, free_nats=0.0))
    loss, _ = model.loss(random_tokens(4, 10))
    loss.backward()
    assert missing_gradients(model) == []


@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_readout_decoder_does_not_shape_the_representation(dynamics):
    torch.manual_seed(0)
    model = build_model(tiny(dynamics=dynamics, objective="contrastive"))
    terms, _ = model.loss_terms(random_tokens(4, 10))
    terms["readout"].backward()
    assert missing_gradients(model.readout_decoder) == []
    for part in (model.encoder, model.dynamics, model.prediction_heads, model.target_projection):
        leaked = [name for name, p in part.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
        assert leaked == [], f"the readout loss reached {leaked}"


def test_mae_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = build_model(tiny(architecture="masked_autoencoder"))
    loss, _ = model.loss(random_tokens(4, 10))
    loss.backward()
    assert missing_gradients(model) == []


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


# ---------------------------------------------------------------------------------------------------------------
# KL balancing, sampling, unimix


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


# ---------------------------------------------------------------------------------------------------------------
# Causality


@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_features_do_not_see_the_future(dynamics):
    torch.manual_seed(0)
    model = build_model(tiny(dynamics=dynamics)).eval()
    tokens = random_tokens(2, 10, seed=1)
    t = 5
    changed = tokens.clone()
    changed[:, t + 1 :] = random_tokens(2, 10 - t - 1, seed=2)
    before, after = model.features(tokens), model.features(changed)
    for key in before:
        assert torch.allclose(before[key][:, : t + 1], after[key][:, : t + 1], atol=1e-6), key
        assert not torch.allclose(before[key][:, t + 2 :], after[key][:, t + 2 :]), key
    # The prior feature of token t + 1 has seen tokens <= t only; the feature of token t + 1 has seen it.
    assert torch.allclose(before["prior_feature"][:, t + 1], after["prior_feature"][:, t + 1], atol=1e-6)
    assert not torch.allclose(before["feature"][:, t + 1], after["feature"][:, t + 1])
    if dynamics == "rssm":  # with sampling too, given the same noise
        model.train()
        torch.manual_seed(3)
        sampled = model.observe(tokens)["feature"]
        torch.manual_seed(3)
        sampled_changed = model.observe(changed)["feature"]
        assert torch.allclose(sampled[:, : t + 1], sampled_changed[:, : t + 1], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Learning


def train(model, steps, seed=0, lr=3e-3, **data):
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        tokens, _, _ = cycle_data(seed=seed * 100_000 + step, **data)
        loss, metrics = model.loss(tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(metrics)
    return history


@torch.no_grad()
def retrieval_accuracy(model, horizon):
    """Top-1 retrieval of the true prototype ``horizon`` tokens ahead among the 8 prototypes (chance 1/8)."""
    model.eval()
    tokens, labels, prototypes = cycle_data(batch=32, seed=999)
    candidates = model.embed(prototypes[None])[0]  # (8, P)
    predicted = model.predict_next_embeddings(tokens, horizon)  # (B, T - horizon, P)
    guess = (predicted @ candidates.T).argmax(-1)
    return (guess == labels[:, horizon:]).float().mean().item()


@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_contrastive_model_learns_a_cycle(dynamics):
    torch.manual_seed(0)
    model = build_model(tiny(dynamics=dynamics, objective="contrastive"))
    chance = 1 / PROTOTYPES
    assert retrieval_accuracy(model, 1) < 0.5
    model.train()
    history = train(model, steps=250)
    assert history[-1]["contrastive"] < history[0]["contrastive"]
    assert retrieval_accuracy(model, 1) > 0.8 > chance
    assert retrieval_accuracy(model, 2) > 0.5  # two tokens ahead, open-loop imagination


def test_mae_masks_half_and_learns():
    torch.manual_seed(0)
    model = build_model(tiny(architecture="masked_autoencoder"))
    mask = model.random_mask(6, 10)
    assert mask.dtype == torch.bool and torch.equal(mask.sum(1), torch.full((6,), 5))
    assert not torch.equal(mask[0], mask[1]) or not torch.equal(mask[1], mask[2])  # random per sequence
    history = train(model, steps=300)
    assert all(metrics["mask_fraction"] == 0.5 for metrics in history)
    first, last = (sum(m["loss"].item() for m in part) / 10 for part in (history[:10], history[-10:]))
    assert last < 0.25 * first  # far below predicting the mean token (about 0.75 * first)
    latents = model.eval().features(random_tokens(2, 10))
    assert latents["embedding"].shape == (2, 10, model.config.d_model)
    assert len([key for key in latents if key.startswith("layer_")]) == model.config.n_layers


@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_predictions_at_chosen_positions_match_every_position(dynamics):
    """Evaluation asks for a subset of context ends; the answer is the same as asking for all and picking."""
    torch.manual_seed(0)
    model = build_model(tiny(dynamics=dynamics)).eval()
    tokens = random_tokens(2, 12)
    positions = torch.tensor([0, 4, 7])
    for horizon in (1, 3):
        every = model.predict_next_embeddings(tokens, horizon)  # (B, T - h, P)
        chosen = model.predict_next_embeddings(tokens, horizon, positions=positions)
        torch.testing.assert_close(chosen, every[:, positions], atol=1e-5, rtol=1e-4)
        predicted = model.predict_ahead(tokens, horizon, positions=positions)["tokens"]  # (B, 3, 64, 4) dB
        assert predicted.shape == (2, 3, 64, 4) and torch.isfinite(predicted).all()
        # the token predicted from context 0..7 is the decoded end of an imagination from that context
        imagined = model.imagine(tokens[:, :8], horizon)["feature"][:, -1]
        torch.testing.assert_close(predicted[:, 2], model.decode(imagined), atol=1e-4, rtol=1e-4)
    with pytest.raises(AssertionError, match="context ends"):
        model.predict_next_embeddings(tokens, 3, positions=torch.tensor([9]))


def test_surprise_is_the_kl_of_each_token():
    torch.manual_seed(0)
    model = build_model(tiny(dynamics="rssm")).eval()
    tokens = random_tokens(2, 6)
    surprise = model.surprise(tokens)
    observed = model.observe(tokens, sample=False)
    post, prior = observed["post_logits"].exp(), observed["prior_logits"].exp()
    by_hand = (post * (post.log() - prior.log())).sum((-2, -1))
    assert surprise.shape == (2, 6) and (surprise >= 0).all()
    torch.testing.assert_close(surprise, by_hand)
    with pytest.raises(AssertionError, match="RSSM"):
        build_model(tiny(dynamics="transformer")).surprise(tokens)


@pytest.mark.parametrize("causal", [True, False])
def test_block_equals_torch_pre_norm_encoder_layer(causal):
    """The written-out layer computes what nn.TransformerEncoderLayer (pre-norm, GELU) does with the same weights."""
    torch.manual_seed(0)
    config = tiny()
    d = config.d_model
    reference = torch.nn.TransformerEncoderLayer(d, config.n_heads, 4 * d, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
    block = Block(config)
    with torch.no_grad():
        for mine, theirs in ((block.norm1, reference.norm1), (block.norm2, reference.norm2),
                             (block.out, reference.self_attn.out_proj), (block.fc1, reference.linear1),
                             (block.fc2, reference.linear2)):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        block.qkv.weight.copy_(reference.self_attn.in_proj_weight)
        block.qkv.bias.copy_(reference.self_attn.in_proj_bias.detach() + torch.randn(3 * d))  # a non-zero bias too
        reference.self_attn.in_proj_bias.copy_(block.qkv.bias)
    x = torch.randn(3, 7, d)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(7) if causal else None
    expected = reference(x, src_mask=mask, is_causal=causal)
    assert torch.allclose(block(x, causal=causal), expected, atol=1e-5)


def test_transformer_imagination_matches_observing_its_own_predictions():
    """The key-value-cached imagination equals re-running the window, and an imagined token's feature is the
    feature ``observe`` gives when the predicted embeddings are fed in as if observed."""
    torch.manual_seed(0)
    dynamics = build_model(tiny(dynamics="transformer")).eval().dynamics
    context = torch.randn(2, 5, dynamics.config.embed_dim)
    with torch.no_grad():
        imagined = dynamics.imagine(context, 4)
        sliding = dynamics._imagine_sliding(context, 4)
        observed = dynamics.observe(torch.cat([context, imagined["embedding"]], 1))
    for key in ("embedding", "prior_feature", "feature"):
        torch.testing.assert_close(imagined[key], sliding[key], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(imagined["feature"], observed["feature"][:, 5:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(imagined["prior_feature"], observed["prior_feature"][:, 5:], atol=1e-5, rtol=1e-4)
    # from several ends of one window at once: the same as imagining from each context alone
    window = torch.randn(2, 9, dynamics.config.embed_dim)
    ends = [0, 3, 6]
    together = dynamics.imagine_from_ends(window, ends, 2)
    assert together["feature"].shape == (2, 3, 2, dynamics.config.d_model)
    for index, end in enumerate(ends):
        with torch.no_grad():
            alone = dynamics.imagine(window[:, : end + 1], 2)
        for key in ("embedding", "prior_feature", "feature"):
            torch.testing.assert_close(together[key][:, index], alone[key], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_parameter_groups_cover_the_model(dynamics, objective):
    model = build_model(tiny(dynamics=dynamics, objective=objective))
    groups = parameter_groups(model)
    assert sum(groups.values()) == count_parameters(model)
    assert ("prediction heads" in groups) == model.config.contrastive
    assert ("reconstruction decoder" in groups) == model.config.reconstruction
