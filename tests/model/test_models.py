"""The world model and the MAE control: shapes, gradients, the KL by hand, sampling, causality, and learning.

Everything runs on the ``tiny`` preset on the CPU (the whole file takes well under a minute).
"""
import json

import pytest
import torch

from wmlib.model.models import (
    DYNAMICS,
    OBJECTIVES,
    RSSM,
    SIZES,
    Block,
    MaskedAutoencoder,
    ModelConfig,
    WorldModel,
    build_model,
    count_parameters,
    denormalise_tokens,
    normalise_tokens,
    parameter_groups,
    sliding_windows,
    symexp,
    symlog,
)

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


@pytest.mark.parametrize("length, context", [(15, None), (16, None), (40, None), (57, None), (40, 6), (9, 8)])
def test_transformer_observes_any_length_in_overlapping_windows(length, context):
    """Past its context (``max_len - 1`` or less) the transformer reads overlapping windows: each token's prior
    feature and feature equal those of a window that ends at it and holds at least half a window of its past (or
    all of it)."""
    torch.manual_seed(0)
    model = build_model(tiny(dynamics="transformer", max_len=16)).eval()
    tokens = random_tokens(2, length)
    observed = model.observe(tokens, context=context)
    assert observed["feature"].shape == (2, length, model.config.d_model)
    window = context or model.config.max_len - 1
    embeddings = model.encoder(tokens)
    for t in range(length):
        for key, seen in (("prior_feature", t), ("feature", t + 1)):  # tokens the output has seen
            least = min(seen, window // 2 + 1)  # at least this much of its past
            matches = []
            for start in range(max(0, seen - window), seen - least + 1):
                run = model.dynamics._run(embeddings[:, start : start + window])  # (B, L + 1, d)
                if seen - start < run.shape[1]:
                    matches.append(torch.allclose(observed[key][:, t], run[:, seen - start], atol=1e-5))
            assert any(matches), (key, t)
    short = model.observe(tokens[:, :window], context=context)  # within the context: read whole, as before
    torch.testing.assert_close(short["feature"], model.dynamics._run(embeddings[:, :window])[:, 1:])
    if length > window:
        torch.testing.assert_close(observed["feature"][:, :window], short["feature"])
    with pytest.raises(AssertionError, match="context"):
        model.observe(tokens, context=model.config.max_len)  # past the positions


def test_sliding_windows_cover_every_position_once():
    for length, window, causal in ((40, 16, True), (57, 16, False), (17, 16, True), (100, 7, False)):
        starts, bounds = sliding_windows(length, window, causal)
        assert bounds[0] == 0 and bounds[-1] == length and bounds == sorted(bounds)
        for start, first, last in zip(starts, bounds, bounds[1:]):
            assert start <= first < last <= start + window and start + window <= length


def test_mae_features_any_length():
    torch.manual_seed(0)
    model = build_model(tiny(architecture="masked_autoencoder", max_len=16)).eval()
    tokens = random_tokens(2, 50)
    features = model.features(tokens)
    assert features["embedding"].shape == (2, 50, model.config.d_model)
    torch.testing.assert_close(features["embedding"][:, :8], model.features(tokens[:, :16])["embedding"][:, :8])
    torch.testing.assert_close(features["embedding"][:, -8:], model.features(tokens[:, -16:])["embedding"][:, -8:])


def test_world_model_features_of_a_minute():
    """60 s (1,500 tokens) through both dynamics at the default max_len: finite latents for every token."""
    for dynamics in DYNAMICS:
        model = build_model(tiny(dynamics=dynamics, max_len=512)).eval()
        features = model.features(random_tokens(1, 1500))
        assert all(value.shape[:2] == (1, 1500) and torch.isfinite(value).all() for value in features.values())


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
