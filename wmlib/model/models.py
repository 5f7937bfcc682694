"""The world model: a token encoder, a dynamics model (RSSM or causal transformer), heads and losses; and the
masked-autoencoder control.  Meant to be read top to bottom in one sitting (nanoGPT / DreamerV3 style).

Contents, in reading order: config and presets; input scaling; small building blocks; :class:`RSSM`;
:class:`TransformerDynamics`; :class:`WorldModel`, which joins an encoder, one dynamics model and the heads, and
owns the losses; :class:`MaskedAutoencoder` ("the old way: reconstruction"); helpers.  Beside it, not inside it:
the categorical latents' arithmetic (:mod:`wmlib.model.categorical`) and the RSSM's time loop written for speed
(:mod:`wmlib.model.rssm_loop`).

Shape letters: B batch, T tokens in time, M mel bins, F frames per token, E embedding, D deterministic state,
S stochastic variables, C classes per variable, P contrastive projection, d transformer width, H horizon.

Time convention, the same for both dynamics models.  For token ``t``:

- the **prior feature** has seen tokens ``< t`` only: it is the model's prediction state for token ``t``
  (RSSM: ``concat(h_t, prior_probs(h_t))``; transformer: its output at the position before token ``t``);
- the **feature** has seen tokens ``<= t`` (RSSM: ``concat(h_t, z_t)`` with ``z_t`` sampled from the posterior;
  transformer: its output after token ``t``).  Decoders map a feature to its own token; imagined features (dreams)
  have the same meaning, so the same decoder shows and plays them.

Used by the training, probing, dreams and RSA chapters (through :mod:`wmlib.model.train` and the analyses).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .categorical import categorical_kl, exponential_noise, kl_balance, straight_through_sample
from .rssm_loop import RSSMLoop, gru_forward, posterior_loop

DYNAMICS = ("rssm", "transformer")
OBJECTIVES = ("contrastive", "reconstruction", "both")
ARCHITECTURES = ("world_model", "masked_autoencoder")


# ----------------------------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class ModelConfig:
    """Every size and switch of the models.  The defaults are the ``"default"`` preset (a 2-core laptop CPU).

    ``hidden_dim`` is the width of the RSSM's prior and posterior networks and of every head and decoder.
    ``predict_horizons`` is K: the contrastive loss predicts the tokens 1..K ahead, one small head per horizon.
    The transformer settings serve both the transformer dynamics and the masked autoencoder.
    """

    architecture: str = "world_model"  # "world_model" | "masked_autoencoder"
    n_mels: int = 64
    frames_per_token: int = 4
    embed_dim: int = 256
    hidden_dim: int = 256
    dynamics: str = "rssm"  # "rssm" | "transformer"
    objective: str = "contrastive"  # "contrastive" | "reconstruction" | "both"
    # RSSM
    deter_dim: int = 512
    stoch_vars: int = 16
    stoch_classes: int = 16
    unimix: float = 0.01
    kl_dyn_scale: float = 0.5
    kl_rep_scale: float = 0.1
    # DreamerV3 uses 1 free nat beside a reconstruction loss *summed* over every pixel; our losses are means of a
    # few terms, so the same KL weighs far more.  At 1 nat the contrastive RSSM reached top-1 0.245 at 400 steps on
    # the default corpus (horizon 1); at 5 nats 0.364, with horizons 4 and 8 unchanged; at 16 nats 0.391, but the
    # prior, untrained below the clip, imagined worse from 4 tokens ahead (0.073 vs 0.111).  See bench/README.md.
    free_nats: float = 5.0
    # transformer (dynamics and masked autoencoder)
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 256
    # positions, the transformer's start position included; longer sequences are read in overlapping windows
    # (TransformerDynamics.observe, MaskedAutoencoder.features)
    max_len: int = 512
    dropout: float = 0.0
    # contrastive prediction
    proj_dim: int = 128
    temperature: float = 0.1
    predict_horizons: int = 4
    # masked autoencoder
    mask_ratio: float = 0.5

    def __post_init__(self):
        assert self.architecture in ARCHITECTURES, (
            f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        assert self.dynamics in DYNAMICS, f"dynamics must be one of {DYNAMICS}, got {self.dynamics!r}"
        assert self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}, got {self.objective!r}"
        assert self.d_model % self.n_heads == 0, f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}"
        assert self.predict_horizons >= 1, f"predict_horizons must be >= 1, got {self.predict_horizons}"
        assert 0.0 < self.mask_ratio < 1.0, f"mask_ratio must lie in (0, 1), got {self.mask_ratio}"
        assert 0.0 <= self.unimix < 1.0, f"unimix must lie in [0, 1), got {self.unimix}"

    @property
    def token_dim(self) -> int:
        """Numbers in one token: ``n_mels * frames_per_token`` (256 by default)."""
        return self.n_mels * self.frames_per_token

    @property
    def contrastive(self) -> bool:
        return self.objective in ("contrastive", "both")

    @property
    def reconstruction(self) -> bool:
        return self.objective in ("reconstruction", "both")

    @classmethod
    def preset(cls, name: str, **overrides) -> ModelConfig:
        """The sizes of preset ``name`` (a key of :data:`SIZES`), with ``overrides`` on top.

        Example: ``ModelConfig.preset("default", dynamics="transformer", objective="both")``.
        """
        assert name in SIZES, f"unknown preset {name!r}; choose from {sorted(SIZES)}"
        return cls(**{**SIZES[name], **overrides})

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for the checkpoint's config file); ``ModelConfig(**d)`` reads it back."""
        return asdict(self)


SIZES: dict[str, dict] = {
    # Tests and CI: trains in seconds.
    "tiny": dict(embed_dim=32, hidden_dim=64, deter_dim=64, stoch_vars=8, stoch_classes=8, n_layers=2, n_heads=2,
                 d_model=32, max_len=128, proj_dim=32, predict_horizons=2),
    # The book on a 2-core CPU (the dataclass defaults).
    "default": dict(embed_dim=256, hidden_dim=256, deter_dim=512, stoch_vars=16, stoch_classes=16, n_layers=4,
                    n_heads=4, d_model=256, max_len=512, proj_dim=128, predict_horizons=4),
    # GPUs.
    "large": dict(embed_dim=512, hidden_dim=1024, deter_dim=2048, stoch_vars=32, stoch_classes=32, n_layers=8,
                  n_heads=8, d_model=512, max_len=1024, proj_dim=256, predict_horizons=8),
}


# ----------------------------------------------------------------------------------------------------------------
# Input scaling

DB_OFFSET = 50.0
DB_SCALE = 25.0


def normalise_tokens(tokens_db: torch.Tensor) -> torch.Tensor:
    """Fixed affine map of log-mel dB to roughly unit range: ``(dB + 50) / 25``.

    Tokens lie in about -100..+10 dB re full scale, which maps to -2..+2.4; -50 dB (quiet speech) maps to 0.
    Fixed rather than fitted so that a checkpoint needs no data statistics.  Reconstruction losses are MSE in
    this scale.
    """
    return (tokens_db + DB_OFFSET) / DB_SCALE


def denormalise_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalise_tokens`: back to dB."""
    return tokens * DB_SCALE - DB_OFFSET


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(1 + |x|)`` (DreamerV3): compresses large magnitudes, identity-like near 0."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(x.abs())


# ----------------------------------------------------------------------------------------------------------------
# Building blocks


def mlp(in_dim: int, hidden_dim: int, out_dim: int, hidden_layers: int = 1) -> nn.Sequential:
    """``hidden_layers`` × (Linear, LayerNorm, SiLU), then a Linear to ``out_dim`` (DreamerV3's layer pattern)."""
    layers = []
    for i in range(hidden_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.SiLU()]
    layers.append(nn.Linear(hidden_dim, out_dim))
    return nn.Sequential(*layers)


def check_tokens(tokens: torch.Tensor, config: ModelConfig) -> None:
    """Assert that ``tokens`` is ``(B, T, n_mels, frames_per_token)``."""
    expected = (config.n_mels, config.frames_per_token)
    assert tokens.ndim == 4 and tuple(tokens.shape[-2:]) == expected, (
        f"tokens must be (batch, time, {expected[0]}, {expected[1]}) log-mel dB, got {tuple(tokens.shape)}")


class Block(nn.Module):
    """One pre-norm transformer layer (nanoGPT style): ``x + attention(norm(x))``, then ``x + mlp(norm(x))``.

    Written out rather than ``nn.TransformerEncoderLayer``, which on a CPU spends a quarter of a training step
    outside its matmuls (time-major transposes of q, k and v, and dropout copies even at ``p=0``); this version is
    batch first throughout and skips dropout when it is 0.  It also serves the transformer's key-value cache.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.d_model
        self.heads, self.dropout = config.n_heads, config.dropout
        self.norm1, self.qkv, self.out = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        nn.init.xavier_uniform_(self.qkv.weight)  # as nn.MultiheadAttention initialises its projections
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.dropout, training=True) if self.dropout and self.training else x

    def forward(self, x: torch.Tensor, causal: bool = True, cache: list | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, n, d)`` -> ``(B, n, d)``.

        Args:
            causal: each position attends to itself and earlier ones only (``False``: to all).
            cache: key-value cache, a list (empty at first) that this call extends in place with the keys and values
                of ``x``; the new positions attend to every cached one.
            valid: ``(B, cached + n)`` bool, the keys each row may see (all, if ``None``); with a cache only.
        """
        query, key, value = self.qkv(self.norm1(x)).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        if cache is not None:  # (B, H, n, dh) each
            if cache:
                key, value = torch.cat([cache[0], key], 2), torch.cat([cache[1], value], 2)
            cache[:] = [key, value]
        causal = causal and query.shape[2] > 1  # one new position may see every key
        assert not causal or valid is None and key.shape[2] == query.shape[2], (
            "several new positions must come before any cached one, without a key mask")
        mask = None if valid is None else valid[:, None, None, :]  # (B, 1, 1, keys): broadcast over heads, queries
        mixed = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=causal,
                                               dropout_p=self.dropout if self.training else 0.0)  # (B, H, n, dh)
        x = x + self._drop(self.out(mixed.transpose(1, 2).flatten(-2)))
        return x + self._drop(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class Transformer(nn.Module):
    """``n_layers`` :class:`Block` s and a final LayerNorm (used by both transformers here)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, causal)
        return self.norm(x)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sin-cos position codes ``(length, dim)`` (Vaswani et al.), for the masked autoencoder."""
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (L, 1)
    frequency = 10_000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim/2,)
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return codes


class TokenEncoder(nn.Module):
    """A token (n_mels × frames, in dB) -> an embedding: scale, symlog, flatten, two MLP layers."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.net = nn.Sequential(
            nn.Linear(config.token_dim, config.embed_dim), nn.LayerNorm(config.embed_dim), nn.SiLU(),
            nn.Linear(config.embed_dim, config.embed_dim), nn.LayerNorm(config.embed_dim), nn.SiLU())

    def forward(self, tokens_db: torch.Tensor) -> torch.Tensor:
        """``(..., M, F)`` dB -> ``(..., E)``."""
        shape = (self.config.n_mels, self.config.frames_per_token)
        assert tuple(tokens_db.shape[-2:]) == shape, f"tokens must end in {shape}, got {tuple(tokens_db.shape)}"
        x = symlog(normalise_tokens(tokens_db)).flatten(-2)  # (..., M*F)
        return self.net(x)  # (..., E)


class TokenDecoder(nn.Module):
    """A feature -> its token in the normalised scale (see :func:`normalise_tokens`)."""

    def __init__(self, config: ModelConfig, feature_dim: int):
        super().__init__()
        self.shape = (config.n_mels, config.frames_per_token)
        self.net = mlp(feature_dim, config.hidden_dim, config.token_dim, hidden_layers=2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).unflatten(-1, self.shape)  # (..., M, F)


# ----------------------------------------------------------------------------------------------------------------
# RSSM


class RSSM(nn.Module):
    """Recurrent state-space model (DreamerV2/V3): deterministic GRU state ``h`` and categorical stochastic ``z``.

    ``h_t = GRU(h_{t-1}, z_{t-1})`` (no actions: audio has none), ``h_0 = 0``; prior ``p(z_t | h_t)``; posterior
    ``q(z_t | h_t, e_t)``.  ``h_t`` has seen tokens ``< t``, so the prior is a next-token prediction.

    The time loop is the only sequential part, and it holds only the GRU and the posterior.  What does not depend
    on the previous step is done batched over time: the embeddings' share of the posterior input and the sampling
    noise before the loop; the prior, the straight-through samples, the log-probabilities and the features after
    it.  Inside, the GRU's recurrent matmul and the posterior's ``h_t`` matmul share one weight matrix, ``z``
    enters the GRU as a table look-up (it is one-hot), and the whole loop is one autograd node with a written-out
    backward whose weight gradients are one matmul each over all steps (:class:`RSSMLoop`).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        deter, hidden = config.deter_dim, config.hidden_dim
        self.stoch_dim = config.stoch_vars * config.stoch_classes
        self.feature_dim = deter + self.stoch_dim
        # GRU, DreamerV3's variant (LayerNorm on the gates, reset applied to the whole candidate); gates are laid out
        # [reset | update | candidate].  Its h-weights share one matrix with the posterior's.
        self.gru_from_stoch = nn.Linear(self.stoch_dim, 3 * deter, bias=False)
        self.from_deter = nn.Linear(deter, 3 * deter + hidden)  # [GRU gates | posterior hidden]
        self.gru_norm = nn.LayerNorm(3 * deter)
        with torch.no_grad():
            self.gru_norm.bias[deter : 2 * deter].fill_(-1.0)  # update gate starts near keeping the state (DreamerV3)
        # posterior q(z_t | h_t, e_t): Linear(concat(h, e)) split as W_h h + W_e e, then LayerNorm, SiLU, Linear
        self.posterior_from_embedding = nn.Linear(config.embed_dim, hidden, bias=False)
        self.posterior_norm = nn.LayerNorm(hidden)
        self.posterior_out = nn.Linear(hidden, self.stoch_dim)
        # prior p(z_t | h_t)
        self.prior = mlp(deter, hidden, self.stoch_dim)

    def initial_state(self, batch: int, device=None, dtype=None) -> dict:
        """The state before any token: ``h = 0``, ``z = 0``."""
        return {"deter": torch.zeros(batch, self.config.deter_dim, device=device, dtype=dtype),
                "stoch": torch.zeros(batch, self.stoch_dim, device=device, dtype=dtype)}

    def _run_posterior(self, step_bias: torch.Tensor, noise: torch.Tensor | None) -> tuple:
        """The posterior loop of :meth:`observe` (:class:`RSSMLoop`) in float32: ``h_t`` ``(T, B, D)``, the unimix
        posteriors ``(T, B, S, C)`` and the sampled classes ``(T, B, S)``.  :func:`prepare_for_compile` keeps it
        out of ``torch.compile``."""
        c = self.config
        constants = SimpleNamespace(eps=self.gru_norm.eps, unimix=c.unimix, classes=c.stoch_classes,
                                    offsets=torch.arange(c.stoch_vars, device=step_bias.device) * c.stoch_classes)
        inputs = (step_bias.to(self.from_deter.weight.dtype), self.from_deter.weight, self.posterior_out.weight,
                  self.gru_from_stoch.weight, self.posterior_norm.weight, self.posterior_norm.bias,
                  self.posterior_out.bias, self.gru_norm.weight, self.gru_norm.bias, noise, constants)
        with torch.autocast(step_bias.device.type, enabled=False):
            if torch.is_grad_enabled():
                return RSSMLoop.apply(*inputs)
            return posterior_loop(*inputs)[:3]

    def _gru(self, deter: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """One GRU step from the summed gate pre-activations ``W_h h + W_z z + b`` ``(B, 3D)``: ``(B, D)``
        (:func:`gru_forward`; in the parameters' dtype, as autocast runs LayerNorm)."""
        norm = self.gru_norm
        return gru_forward(gates.to(norm.weight.dtype), deter.to(norm.weight.dtype), norm.weight, norm.bias,
                            norm.eps)[0]

    def _gates_from_deter(self, deter: torch.Tensor) -> torch.Tensor:
        """The GRU's share of ``from_deter`` alone (used where no posterior is needed): ``(B, 3D)``."""
        rows = 3 * self.config.deter_dim
        return F.linear(deter, self.from_deter.weight[:rows], self.from_deter.bias[:rows])

    def _mixed_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """``(..., S*C)`` logits -> ``(..., S, C)`` unimix probabilities."""
        c = self.config
        probs = logits.unflatten(-1, (c.stoch_vars, c.stoch_classes)).softmax(-1)  # (..., S, C)
        return (1.0 - c.unimix) * probs + c.unimix / c.stoch_classes

    def _prior(self, deter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., D)`` -> prior unimix log-probs ``(..., S, C)`` and the prior feature ``(..., D + S*C)``."""
        prior_probs = self._mixed_probs(self.prior(deter))  # (..., S, C)
        prior_feature = torch.cat([deter, prior_probs.flatten(-2)], -1)  # (..., D + S*C)
        return prior_probs.log(), prior_feature

    def observe(self, embeddings: torch.Tensor, sample: bool = True) -> dict:
        """Run the posterior over a sequence of token embeddings.

        Args:
            embeddings: ``(B, T, E)`` encoder embeddings.
            sample: sample ``z`` (training); ``False`` takes the posterior's mode (deterministic, for analyses).

        Returns:
            Dict of per-step tensors: ``deter`` ``(B, T, D)`` (``h_t``, seen tokens < t); ``stoch`` ``(B, T, S*C)``
            (one-hot ``z_t`` from the posterior, straight-through); ``post_logits`` and ``prior_logits``
            ``(B, T, S, C)`` (unimix log-probabilities); ``feature`` ``(B, T, D + S*C)`` = ``concat(h_t, z_t)``;
            ``prior_feature`` ``(B, T, D + S*C)`` = ``concat(h_t, prior probs)``.
        """
        c = self.config
        assert embeddings.ndim == 3 and embeddings.shape[-1] == c.embed_dim, (
            f"embeddings must be (batch, time, {c.embed_dim}), got {tuple(embeddings.shape)}")
        batch, length, _ = embeddings.shape
        # Before the loop, batched over time (time-major for the loop).  The embeddings' share of the posterior
        # joins from_deter's bias: one bias per step and row.
        gates_bias, posterior_bias = self.from_deter.bias.split([3 * c.deter_dim, c.hidden_dim])
        step_bias = torch.cat([gates_bias.expand(length, batch, -1), posterior_bias
                               + self.posterior_from_embedding(embeddings.transpose(0, 1))], -1)  # (T, B, 3D + hidden)
        noise = (exponential_noise((length, batch, c.stoch_vars, c.stoch_classes), embeddings.device)
                 if sample else None)  # (T, B, S, C)
        deter, post_probs, index = self._run_posterior(step_bias, noise)  # (T, B, ·)
        # After the loop, batched over time.
        deter, post_probs = deter.transpose(0, 1), post_probs.transpose(0, 1)  # (B, T, D), (B, T, S, C)
        one_hot = F.one_hot(index.transpose(0, 1), c.stoch_classes).to(post_probs.dtype)  # (B, T, S, C)
        stoch = (one_hot + (post_probs - post_probs.detach())).flatten(-2)  # (B, T, S*C), straight-through
        prior_logits, prior_feature = self._prior(deter)
        return {"deter": deter, "stoch": stoch, "post_logits": post_probs.log(), "prior_logits": prior_logits,
                "feature": torch.cat([deter, stoch], -1), "prior_feature": prior_feature}

    def imagine(self, state: dict, horizon: int, sample: bool = True) -> dict:
        """Roll the prior forward open-loop from ``state`` (the ``deter``/``stoch`` of the last observed token).

        Args:
            state: ``{"deter": (B, D), "stoch": (B, S*C)}``, e.g. the last step of :meth:`observe`.
            horizon: number of tokens to imagine.
            sample: sample ``z`` from the prior; ``False`` takes its mode.

        Returns:
            Dict for the imagined tokens 1..horizon after ``state``: ``deter`` ``(B, H, D)``, ``stoch``
            ``(B, H, S*C)``, ``prior_logits`` ``(B, H, S, C)``, ``feature`` and ``prior_feature`` ``(B, H, D+S*C)``.
        """
        deter, stoch = state["deter"], state["stoch"]
        assert deter.ndim == 2 and deter.shape[-1] == self.config.deter_dim, (
            f"state deter must be (batch, {self.config.deter_dim}), got {tuple(deter.shape)}")
        assert stoch.shape == (len(deter), self.stoch_dim), (
            f"state stoch must be ({len(deter)}, {self.stoch_dim}), got {tuple(stoch.shape)}")
        deters, stochs = [], []
        for _ in range(horizon):
            deter = self._gru(deter, self._gates_from_deter(deter) + self.gru_from_stoch(stoch))  # (B, D)
            probs = self._mixed_probs(self.prior(deter))  # (B, S, C)
            noise = exponential_noise(probs.shape, probs.device) if sample else None
            stoch = straight_through_sample(probs, noise).flatten(-2)  # (B, S*C)
            deters.append(deter)
            stochs.append(stoch)
        deter = torch.stack(deters, 1)  # (B, H, D)
        stoch = torch.stack(stochs, 1)  # (B, H, S*C)
        prior_logits, prior_feature = self._prior(deter)
        return {"deter": deter, "stoch": stoch, "prior_logits": prior_logits,
                "feature": torch.cat([deter, stoch], -1), "prior_feature": prior_feature}


def prepare_for_compile() -> None:
    """Set up ``torch.compile`` for these models; whoever compiles calls it first (``wmlib.model.train``, the bench).

    - The RSSM's posterior loop stays eager: 64 steps of small operations, which compiled ran slower here (251
      against 220 ms a step, after 165 s of compiling).
    - Inductor draws eager's random numbers (``fallback_random``), so compiled runs sample as eager ones do.

    Not done at import: ``torch.compiler.disable`` imports ``torch._dynamo``, about 2 s that every
    ``import wmlib.model.models`` (each chapter, each command) would pay.  Calling it again changes nothing.
    """
    from torch._inductor import config as inductor_config

    inductor_config.fallback_random = True
    if not getattr(RSSM._run_posterior, "_torchdynamo_disable", False):
        RSSM._run_posterior = torch.compiler.disable(RSSM._run_posterior)


# ----------------------------------------------------------------------------------------------------------------
# Transformer dynamics


def sliding_windows(length: int, window: int, causal: bool) -> tuple[list[int], list[int]]:
    """How to read a sequence of ``length`` positions in windows of ``window`` positions that overlap by half.

    Returns ``(starts, bounds)``: window ``w`` covers positions ``starts[w] .. starts[w] + window - 1`` and
    provides the outputs of positions ``bounds[w] .. bounds[w + 1] - 1``, so that every position is read in the
    window that gives it the most context: the latest window that starts before it less than half a window back
    (``causal``: a position sees only earlier ones), or the window whose centre is nearest (not causal).
    """
    assert length > window >= 2, f"a sequence of {length} positions needs no window of {window}"
    stride = window // 2
    starts = list(range(0, length - window, stride)) + [length - window]
    if causal:  # the first window gives all it has, each later one what lies past the one before
        bounds = [0] + [start + window for start in starts]
    else:  # halfway between neighbouring windows' centres
        bounds = [0] + [(a + b + window) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return starts, bounds


def stitch_windows(runs: torch.Tensor, starts: list[int], bounds: list[int]) -> torch.Tensor:
    """The outputs of windows ``(B, W, L, ...)`` joined into one sequence ``(B, bounds[-1], ...)``: window ``w``
    gives positions ``bounds[w] .. bounds[w + 1] - 1`` (:func:`sliding_windows`)."""
    return torch.cat([runs[:, w, first - start : last - start]
                      for w, (start, first, last) in enumerate(zip(starts, bounds, bounds[1:]))], 1)


class TransformerDynamics(nn.Module):
    """A causal transformer over token embeddings (STORM-like), trained in parallel over time.

    The input is ``[start, e_0, ..., e_{T-1}]`` with learned positions; with the causal mask the output at position
    t has seen tokens ``< t`` (the prior feature of token t) and the output at position t+1 has seen tokens
    ``<= t`` (the feature of token t).  A head maps a prior feature to the predicted embedding of its token; in
    imagination that prediction is fed back as the next input.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.feature_dim = config.d_model
        self.input_projection = nn.Linear(config.embed_dim, config.d_model)
        self.start = nn.Parameter(0.02 * torch.randn(config.d_model))
        self.position = nn.Parameter(0.02 * torch.randn(config.max_len, config.d_model))
        self.transformer = Transformer(config)
        self.next_embedding = mlp(config.d_model, config.hidden_dim, config.embed_dim)

    def _run(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, L, E)`` -> outputs ``(B, L + 1, d)`` over ``[start, e_0..e_{L-1}]``, causally masked."""
        batch, length, _ = embeddings.shape
        assert length + 1 <= self.config.max_len, (
            f"{length} tokens + the start position exceed max_len={self.config.max_len}")
        x = self.input_projection(embeddings)  # (B, L, d)
        x = torch.cat([self.start.expand(batch, 1, -1).to(x.dtype), x], 1) + self.position[: length + 1]  # (B, L+1, d)
        return self.transformer(x, causal=True)  # (B, L+1, d)

    def observe(self, embeddings: torch.Tensor, sample: bool = True, context: int | None = None) -> dict:
        """Features of every token, in one parallel pass (or, past ``context`` tokens, in overlapping windows).

        A sequence of up to ``context`` tokens is read whole: token t sees every token before it.  A longer one (a
        reader's own minute of audio) is read in windows of ``context`` tokens, each starting afresh from the start
        position, that overlap by half (:func:`sliding_windows`): every token is read in the window that gives it
        the most context, so it sees at least the ``context // 2 + 1`` tokens before it (the whole past when there
        are fewer) and at most ``context``.  The default, ``max_len - 1``, is the most the positions allow (256 to
        511 tokens, 10 to 20 s); a model trained on shorter windows has learned only their positions, which is why
        :func:`wmlib.model.encode.encode` reads a recording in windows of the length the model was trained on.

        Args:
            embeddings: ``(B, T, E)``, any ``T``.
            sample: ignored (the transformer is deterministic); kept so both dynamics share a signature.
            context: the most tokens a window holds, ``1 .. max_len - 1`` (default ``max_len - 1``).

        Returns:
            Dict: ``feature`` ``(B, T, d)`` (seen tokens <= t; also under ``deter``), ``prior_feature`` ``(B, T, d)``
            (seen tokens < t), ``predicted_embedding`` ``(B, T, E)`` (the head's prediction of ``e_t``).
        """
        assert embeddings.ndim == 3 and embeddings.shape[-1] == self.config.embed_dim, (
            f"embeddings must be (batch, time, {self.config.embed_dim}), got {tuple(embeddings.shape)}")
        batch, length, _ = embeddings.shape
        window = self.config.max_len - 1 if context is None else context
        assert 1 <= window <= self.config.max_len - 1, (
            f"context must lie in 1..{self.config.max_len - 1} tokens (max_len - 1), got {context}")
        if length <= window:
            outputs = self._run(embeddings)  # (B, T+1, d)
        else:  # output g has seen tokens < g; window w yields outputs starts[w] + (keep[w] .. keep[w+1])
            starts, keep = sliding_windows(length + 1, window + 1, causal=True)
            chunks = torch.stack([embeddings[:, start : start + window] for start in starts], 1)  # (B, W, L, E)
            runs = self._run(chunks.flatten(0, 1)).unflatten(0, (batch, len(starts)))  # (B, W, L+1, d)
            outputs = stitch_windows(runs, starts, keep)  # (B, T+1, d)
        prior_feature, feature = outputs[:, :-1], outputs[:, 1:]  # (B, T, d) each
        return {"deter": feature, "feature": feature, "prior_feature": prior_feature,
                "predicted_embedding": self.next_embedding(prior_feature)}

    def _run_cached(self, inputs: torch.Tensor, position, caches: list, valid: torch.Tensor | None = None):
        """Projected inputs ``(B, n, d)`` through every layer with key-value ``caches`` (one list per layer):
        ``(B, n, d)`` outputs.  ``position``: the first input's position, an int, or ``(B,)`` per row for one new
        input per row; ``valid``: as in :meth:`Block.forward`."""
        if torch.is_tensor(position):
            x = inputs + self.position[position][:, None]  # (B, 1, d)
        else:
            x = inputs + self.position[position : position + inputs.shape[1]]
        for layer, cache in zip(self.transformer.layers, caches):
            x = layer(x, cache=cache, valid=valid)
        return self.transformer.norm(x)

    def imagine(self, context_embeddings: torch.Tensor, horizon: int) -> dict:
        """Autoregressive open-loop imagination: predict the next embedding, feed it back, repeat.

        With a key-value cache each imagined token costs one position, not a run over the whole window; the
        result equals re-running the window (``tests/model/test_models.py`` checks it).  A window that would outgrow
        ``max_len`` is re-run at every step instead, keeping its most recent embeddings (as nanoGPT's
        ``generate`` does).  No dropout is applied here.

        Args:
            context_embeddings: ``(B, T, E)`` observed tokens' embeddings (T >= 0).
            horizon: number of tokens to imagine.

        Returns:
            Dict for the imagined tokens: ``embedding`` ``(B, H, E)`` (the fed-back predictions), ``prior_feature``
            ``(B, H, d)`` (before the token), ``feature`` ``(B, H, d)`` (after feeding it back, as
            :meth:`observe`'s feature of a real token; also under ``deter``).
        """
        assert context_embeddings.ndim == 3 and context_embeddings.shape[-1] == self.config.embed_dim, (
            f"context must be (batch, time, {self.config.embed_dim}), got {tuple(context_embeddings.shape)}")
        batch, length, _ = context_embeddings.shape
        if length + horizon + 1 > self.config.max_len:
            return self._imagine_sliding(context_embeddings, horizon)
        caches = [[] for _ in self.transformer.layers]
        start = self.start.expand(batch, 1, -1).to(context_embeddings.dtype)
        inputs = torch.cat([start, self.input_projection(context_embeddings)], 1)  # (B, T+1, d)
        output = self._run_cached(inputs, 0, caches)[:, -1]  # (B, d): has seen the whole context
        return self._roll(output, caches, length + 1, horizon)

    def _roll(self, output: torch.Tensor, caches: list, position, horizon: int,
              valid: torch.Tensor | None = None) -> dict:
        """Imagine ``horizon`` tokens from ``output`` ``(B, d)`` (the state after the context, whose keys and values
        fill ``caches``); the first imagined token takes ``position`` (int, or ``(B,)`` per row) and the cached
        keys each row may see are ``valid`` ``(B, cached)`` (all, if ``None``).  Returns :meth:`imagine`'s dict."""
        outputs, predicted = [output], []
        for step in range(horizon):
            predicted.append(self.next_embedding(outputs[-1]))  # (B, E)
            fed_back = self.input_projection(predicted[-1])[:, None]  # (B, 1, d)
            if valid is not None:
                valid = torch.cat([valid, valid.new_ones(len(valid), 1)], 1)  # the new key is always visible
            outputs.append(self._run_cached(fed_back, position + step, caches, valid)[:, 0])
        outputs = torch.stack(outputs, 1)  # (B, H+1, d): before token 1, after token 1, ..., after token H
        return {"embedding": torch.stack(predicted, 1), "prior_feature": outputs[:, :-1],
                "feature": outputs[:, 1:], "deter": outputs[:, 1:]}

    @torch.no_grad()
    def imagine_from_ends(self, embeddings: torch.Tensor, ends, horizon: int) -> dict:
        """:meth:`imagine` from every context ``embeddings[:, :t + 1]``, ``t`` in ``ends``, all at once: one pass
        over the window fills the key-value cache, and every context imagines from it as a batch row that may see
        only the keys up to its own ``t``.

        Returns:
            :meth:`imagine`'s dict with an extra context axis: ``(B, N, H, ·)`` for the ``N`` ends.
        """
        batch, length, _ = embeddings.shape
        ends = torch.as_tensor(ends, device=embeddings.device).long()  # (N,)
        count = len(ends)
        assert int(ends.max()) + 2 + horizon <= self.config.max_len, "imagination would pass max_len"
        caches = [[] for _ in self.transformer.layers]
        start = self.start.expand(batch, 1, -1).to(embeddings.dtype)
        outputs = self._run_cached(torch.cat([start, self.input_projection(embeddings)], 1), 0, caches)  # (B, T+1, d)
        rows = [[key.repeat_interleave(count, 0), value.repeat_interleave(count, 0)]  # (B*N, H, T+1, dh)
                for key, value in caches]
        valid = torch.arange(length + 1, device=embeddings.device) <= ends[:, None] + 1  # (N, T+1): start, e_0..e_t
        rolled = self._roll(outputs[:, ends + 1].flatten(0, 1), rows, (ends + 2).repeat(batch), horizon,
                            valid.repeat(batch, 1))  # rows b * N + n
        return {key: value.unflatten(0, (batch, count)) for key, value in rolled.items()}

    def _imagine_sliding(self, context_embeddings: torch.Tensor, horizon: int) -> dict:
        """:meth:`imagine` past ``max_len``: re-run the most recent ``max_len - 1`` embeddings at every step."""
        window = self.config.max_len - 1
        embeddings = context_embeddings
        outputs, predicted = [], []
        for step in range(horizon + 1):
            outputs.append(self._run(embeddings[:, -window:])[:, -1])  # (B, d): has seen every embedding so far
            if step < horizon:
                predicted.append(self.next_embedding(outputs[-1]))  # (B, E)
                embeddings = torch.cat([embeddings, predicted[-1][:, None]], 1)
        outputs = torch.stack(outputs, 1)  # (B, H+1, d)
        return {"embedding": torch.stack(predicted, 1), "prior_feature": outputs[:, :-1],
                "feature": outputs[:, 1:], "deter": outputs[:, 1:]}


# ----------------------------------------------------------------------------------------------------------------
# The world model


def gather_targets(targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Under DistributedDataParallel, every process's targets, with gradients, and where this process's begin.

    Each rank holds its slice of the global batch; InfoNCE against the gathered targets scores every prediction
    against the same candidates as one process with the whole batch, and the gradients that flow back through
    the gather (summed over ranks), averaged by DDP, are that one process's (``tests/model/test_train.py``).  Without a
    process group: ``(targets, 0)``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return targets, 0
    # Differentiable, unlike torch.distributed.all_gather, and traceable by torch.compile; torch 2.13 deprecates
    # torch.distributed.nn.functional.all_gather in its favour.
    from torch.distributed._functional_collectives import all_gather_single

    return all_gather_single(targets.contiguous(), 0, dist.group.WORLD), dist.get_rank() * len(targets)


def info_nce(predictions: torch.Tensor, targets: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of each prediction against its own target, the other targets of the batch being the negatives.

    Under DistributedDataParallel the negatives are the whole global batch (:func:`gather_targets`).

    Args:
        predictions, targets: ``(N, P)``, L2-normalised; row i of each belongs together.
        temperature: divides the cosine similarities.

    Returns:
        ``(loss, accuracy)``: mean cross-entropy, and the fraction whose own target is the most similar (top-1
        among all candidates).
    """
    candidates, offset = gather_targets(targets)
    logits = (predictions / temperature) @ candidates.T  # (N, N · ranks); scaling N×P numbers, not N×N
    labels = torch.arange(len(logits), device=logits.device) + offset
    loss = F.cross_entropy(logits, labels)
    with torch.no_grad():  # own target scores highest (amax is ~9× faster than argmax over N×N here)
        own = logits.gather(1, labels[:, None])[:, 0]
        accuracy = (own >= logits.amax(-1)).float().mean()
    return loss, accuracy


class WorldModel(nn.Module):
    """Encoder + dynamics (RSSM or transformer) + heads; owns the losses.

    Heads: per horizon k = 1..K a small MLP from the prior feature to the contrastive space (contrastive
    objectives) and one linear projection of the encoder embedding as the target; a reconstruction decoder
    (reconstruction objectives); and always a *readout decoder* trained on detached features, so that any model's
    latents (and dreams) can be seen and heard without that decoder shaping them.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        assert config.architecture == "world_model", f"WorldModel needs architecture='world_model', got {config}"
        self.config = config
        self.encoder = TokenEncoder(config)
        self.dynamics = RSSM(config) if config.dynamics == "rssm" else TransformerDynamics(config)
        feature_dim = self.dynamics.feature_dim
        if config.contrastive:
            self.prediction_heads = nn.ModuleList(
                mlp(feature_dim, config.hidden_dim, config.proj_dim) for _ in range(config.predict_horizons))
            self.target_projection = nn.Linear(config.embed_dim, config.proj_dim)
        if config.reconstruction:
            self.reconstruction_decoder = TokenDecoder(config, feature_dim)
        self.readout_decoder = TokenDecoder(config, feature_dim)

    # -- running the model --------------------------------------------------------------------------------------

    def observe(self, tokens: torch.Tensor, sample: bool | None = None, context: int | None = None) -> dict:
        """Encode and run the dynamics over ``tokens`` ``(B, T, M, F)`` in dB, any ``T``.

        Returns the dynamics' dict (see :meth:`RSSM.observe`, :meth:`TransformerDynamics.observe`) plus
        ``embedding`` ``(B, T, E)``.  ``sample`` defaults to ``self.training``.  ``context``: the transformer's
        window (:meth:`TransformerDynamics.observe`); the RSSM reads any length as it is and ignores it.
        """
        check_tokens(tokens, self.config)
        sample = self.training if sample is None else sample
        embedding = self.encoder(tokens)  # (B, T, E)
        options = {"context": context} if self.config.dynamics == "transformer" else {}
        return {"embedding": embedding, **self.dynamics.observe(embedding, sample=sample, **options)}

    def imagine(self, context_tokens: torch.Tensor, horizon: int, sample: bool | None = None) -> dict:
        """Observe ``context_tokens`` ``(B, T, M, F)`` (T >= 1), then imagine ``horizon`` tokens open-loop.

        Returns the dynamics' imagine dict; its ``feature`` ``(B, H, ·)`` decodes with :meth:`decode`.  For the
        RSSM, ``sample`` (default ``self.training``) samples the prior; pass ``True`` for varied dreams.
        """
        check_tokens(context_tokens, self.config)
        sample = self.training if sample is None else sample
        if self.config.dynamics == "rssm":
            observed = self.observe(context_tokens, sample=sample)
            state = {"deter": observed["deter"][:, -1], "stoch": observed["stoch"][:, -1]}
            return self.dynamics.imagine(state, horizon, sample=sample)
        return self.dynamics.imagine(self.encoder(context_tokens), horizon)

    @torch.no_grad()
    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(..., feature_dim)`` -> tokens ``(..., M, F)`` in dB, by the stop-gradient readout decoder."""
        return denormalise_tokens(self.readout_decoder(features))

    # -- losses -------------------------------------------------------------------------------------------------

    def _contrastive(self, observed: dict) -> tuple[torch.Tensor, dict]:
        """InfoNCE of the prior feature against the embeddings 1..K tokens ahead; mean over horizons."""
        prior_feature, embedding = observed["prior_feature"], observed["embedding"]
        length = embedding.shape[1]
        all_targets = F.normalize(self.target_projection(embedding), dim=-1)  # (B, T, P), shared by the horizons
        losses, metrics = [], {}
        for k, head in enumerate(self.prediction_heads, start=1):
            # Prior features t = 1..T-k (context: tokens < t, at least one) predict token t + k - 1.
            predictions = F.normalize(head(prior_feature[:, 1 : length - k + 1]), dim=-1)  # (B, T-k, P)
            targets = all_targets[:, k:]  # (B, T-k, P)
            loss, accuracy = info_nce(predictions.flatten(0, 1), targets.flatten(0, 1),  # (B*(T-k), P)
                                      self.config.temperature)
            losses.append(loss)
            metrics[f"contrastive_h{k}"] = loss.detach()
            metrics[f"accuracy_h{k}"] = accuracy
        return torch.stack(losses).mean(), metrics

    def loss_terms(self, tokens: torch.Tensor) -> tuple[dict, dict]:
        """The loss terms (with their graphs) and the detached metrics; :meth:`loss` sums the terms.

        Terms, by configuration: ``contrastive`` (mean over horizons of InfoNCE), ``reconstruction`` (MSE of the
        decoded feature on normalised tokens), ``readout`` (always; same MSE on detached features), ``kl_balance``
        (RSSM; :func:`kl_balance` with its scales already applied), ``next_embedding`` (transformer; MSE of the
        predicted embedding against the detached true one, which trains imagination).
        """
        check_tokens(tokens, self.config)
        length = tokens.shape[1]
        assert length > self.config.predict_horizons or not self.config.contrastive, (
            f"need more than predict_horizons={self.config.predict_horizons} tokens per sequence, got {length}")
        observed = self.observe(tokens)
        target = normalise_tokens(tokens)  # (B, T, M, F)
        terms, metrics = {}, {}
        if self.config.contrastive:
            terms["contrastive"], parts = self._contrastive(observed)
            metrics.update(parts)
        if self.config.reconstruction:
            terms["reconstruction"] = F.mse_loss(self.reconstruction_decoder(observed["feature"]), target)
        terms["readout"] = F.mse_loss(self.readout_decoder(observed["feature"].detach()), target)
        if self.config.dynamics == "rssm":
            c = self.config
            terms["kl_balance"], parts = kl_balance(observed["post_logits"], observed["prior_logits"],
                                                    c.kl_dyn_scale, c.kl_rep_scale, c.free_nats)
            metrics.update(parts)
        else:
            terms["next_embedding"] = F.mse_loss(observed["predicted_embedding"], observed["embedding"].detach())
        metrics.update({name: term.detach() for name, term in terms.items()})
        return terms, metrics

    def loss(self, tokens: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Total training loss on ``tokens`` ``(B, T, M, F)`` in dB, and a dict of detached scalar metrics.

        Metrics: ``loss``; every term of :meth:`loss_terms`; ``contrastive_h{k}`` and ``accuracy_h{k}`` (top-1
        among the ``B*(T-k)`` in-batch candidates) for contrastive objectives; ``kl``, ``kl_dyn``, ``kl_rep`` for the
        RSSM.
        """
        terms, metrics = self.loss_terms(tokens)
        loss = sum(terms.values())
        metrics["loss"] = loss.detach()
        return loss, metrics

    # -- latents for analyses -----------------------------------------------------------------------------------

    @torch.no_grad()
    def features(self, tokens: torch.Tensor, context: int | None = None) -> dict:
        """Per-token latents for probes and RSA (deterministic: posterior and prior modes, no sampling).

        Any length; ``context`` is the transformer's window (:meth:`TransformerDynamics.observe`).  Returns a dict
        of ``(B, T, ·)`` tensors: ``embedding`` (encoder), ``deter`` (RSSM ``h_t``, seen tokens < t; transformer
        output after token t), ``prior`` (RSSM prior probabilities ``(B, T, S*C)``; transformer predicted
        embedding of token t), ``feature`` and ``prior_feature``; the RSSM adds ``stoch`` (posterior
        probabilities ``(B, T, S*C)``).
        """
        observed = self.observe(tokens, sample=False, context=context)
        latents = {key: observed[key] for key in ("embedding", "deter", "feature", "prior_feature")}
        if self.config.dynamics == "rssm":
            latents["stoch"] = observed["post_logits"].exp().flatten(-2)  # (B, T, S*C)
            latents["prior"] = observed["prior_logits"].exp().flatten(-2)  # (B, T, S*C)
        else:
            latents["prior"] = observed["predicted_embedding"]
        return latents

    @torch.no_grad()
    def surprise(self, tokens: torch.Tensor) -> torch.Tensor:
        """RSSM only: ``KL(posterior || prior)`` of each token in nats, ``(B, T)`` — how much token t told the model
        that its prediction (the prior, from tokens < t) did not already hold."""
        assert self.config.dynamics == "rssm", "surprise needs the RSSM's prior and posterior"
        observed = self.observe(tokens, sample=False)
        return categorical_kl(observed["post_logits"], observed["prior_logits"])  # (B, T)

    def _require_contrastive(self):
        assert self.config.contrastive, (
            f"objective {self.config.objective!r} has no contrastive heads: retrieval lives in their space")

    @torch.no_grad()
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Retrieval candidates: the target projection of each token's embedding, L2-normalised: ``(B, T, P)``."""
        self._require_contrastive()
        check_tokens(tokens, self.config)
        return F.normalize(self.target_projection(self.encoder(tokens)), dim=-1)  # (B, T, P)

    @torch.no_grad()
    def predict_ahead(self, tokens: torch.Tensor, horizon: int = 1, positions=None, decode: bool = True) -> dict:
        """For context ends t, the model's prediction of token ``t + horizon``, by open-loop imagination.

        One imagination serves both readings: from the state after tokens ``0..t`` the model imagines ``horizon``
        tokens (RSSM: prior modes; transformer: fed-back predicted embeddings) and reports the last one.  Call
        ``model.eval()`` first if the config has dropout.

        Args:
            tokens: ``(B, T, M, F)`` in dB.
            horizon: tokens ahead, ``1 <= horizon < T``.
            positions: the context ends t (``0 <= t < T - horizon``); default every one, ``0..T-horizon-1``.
            decode: decode the imagined token (``False`` leaves ``tokens`` out, for callers that want the
                embedding only).

        Returns:
            Dict: ``tokens`` ``(B, N, M, F)`` dB, the imagined token decoded by the stop-gradient readout decoder;
            for contrastive objectives also ``embedding`` ``(B, N, P)``, the imagined prior feature read by the
            horizon-1 head and L2-normalised (compare with :meth:`embed` by dot product).
        """
        length = tokens.shape[1]
        assert 1 <= horizon < length, f"horizon must lie in 1..{length - 1}, got {horizon}"
        positions = torch.arange(length - horizon) if positions is None else torch.as_tensor(positions)
        assert len(positions) and 0 <= positions.min() and positions.max() < length - horizon, (
            f"context ends must lie in 0..{length - horizon - 1}, got {positions.tolist()}")
        observed = self.observe(tokens, sample=False)
        if self.config.dynamics == "rssm":
            deter, stoch = observed["deter"][:, positions], observed["stoch"][:, positions]  # (B, N, ·)
            state = {"deter": deter.flatten(0, 1), "stoch": stoch.flatten(0, 1)}  # (B*N, ·)
            imagined = self.dynamics.imagine(state, horizon, sample=False)
            prior, feature = (imagined[key][:, -1].unflatten(0, deter.shape[:2])  # (B, N, F)
                              for key in ("prior_feature", "feature"))
        else:
            imagined = self.dynamics.imagine_from_ends(observed["embedding"], positions, horizon)  # (B, N, H, ·)
            prior, feature = imagined["prior_feature"][:, :, -1], imagined["feature"][:, :, -1]  # (B, N, d)
        predicted = {"tokens": self.decode(feature)} if decode else {}
        if self.config.contrastive:
            predicted["embedding"] = F.normalize(self.prediction_heads[0](prior), dim=-1)
        return predicted

    @torch.no_grad()
    def predict_next_embeddings(self, tokens: torch.Tensor, horizon: int = 1, method: str = "imagine",
                                positions=None) -> torch.Tensor:
        """For context ends t, the predicted (projected, normalised) embedding of token ``t + horizon``.

        Compare row i with ``embed(tokens)[:, positions[i] + horizon]`` (or any candidates from :meth:`embed`) by dot
        product.

        Args:
            tokens, horizon, positions: as in :meth:`predict_ahead`.
            method: ``"imagine"``: :meth:`predict_ahead`, open-loop imagination read by the horizon-1 head;
                ``"head"``: the horizon's own head on the observed prior feature (``horizon <= predict_horizons``).
                Both coincide at horizon 1.

        Returns:
            ``(B, len(positions), P)``.
        """
        self._require_contrastive()
        assert method in ("imagine", "head"), f"method must be 'imagine' or 'head', got {method!r}"
        if method == "imagine":
            return self.predict_ahead(tokens, horizon, positions, decode=False)["embedding"]
        length = tokens.shape[1]
        assert 1 <= horizon <= self.config.predict_horizons and horizon < length, f"no head for horizon {horizon}"
        positions = torch.arange(length - horizon) if positions is None else torch.as_tensor(positions)
        prior = self.observe(tokens, sample=False)["prior_feature"][:, positions + 1]  # (B, N, F): seen 0..t
        return F.normalize(self.prediction_heads[horizon - 1](prior), dim=-1)  # (B, N, P)


# ----------------------------------------------------------------------------------------------------------------
# The masked-autoencoder control


class MaskedAutoencoder(nn.Module):
    """The control "the old way: reconstruction" (EnCodecMAE / AudioMAE style, BERT-like masking).

    Mel tokens in; ``mask_ratio`` (50%) of each sequence's tokens replaced by a learned mask token; a small
    non-causal transformer; a linear head reconstructs the masked tokens (MSE on masked positions only, normalised
    scale).  Uses the config's transformer sizes.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.patch_embedding = nn.Linear(config.token_dim, config.d_model)
        self.mask_token = nn.Parameter(0.02 * torch.randn(config.d_model))
        # Fixed sin-cos positions (as AudioMAE): a masked token is found from its neighbours by position alone, and
        # learned positions start too weak for that (training stalls at predicting the mean token).
        self.register_buffer("position", sinusoidal_positions(config.max_len, config.d_model), persistent=False)
        self.transformer = Transformer(config)
        self.head = nn.Linear(config.d_model, config.token_dim)

    def random_mask(self, batch: int, length: int, device=None) -> torch.Tensor:
        """``(B, T)`` bool, True where masked: exactly ``round(mask_ratio * T)`` positions per sequence."""
        masked = int(round(self.config.mask_ratio * length))
        ranks = torch.rand(batch, length, device=device).argsort(1).argsort(1)  # a random permutation per row
        return ranks < masked

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Outputs of every layer ``[(B, T, d)] * n_layers``, the last one after the final LayerNorm."""
        check_tokens(tokens, self.config)
        batch, length = tokens.shape[:2]
        assert length <= self.config.max_len, f"{length} tokens exceed max_len={self.config.max_len}"
        x = self.patch_embedding(symlog(normalise_tokens(tokens)).flatten(-2))  # (B, T, d)
        if mask is not None:
            assert mask.shape == (batch, length), f"mask must be ({batch}, {length}), got {tuple(mask.shape)}"
            x = torch.where(mask[..., None], self.mask_token.to(x.dtype), x)  # (B, T, d)
        x = x + self.position[:length]
        outputs = []
        for layer in self.transformer.layers:
            x = layer(x, causal=False)
            outputs.append(x)
        outputs[-1] = self.transformer.norm(x)
        return outputs

    def loss(self, tokens: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """MSE on the masked positions (normalised scale); metrics ``loss``, ``reconstruction``, ``mask_fraction``."""
        check_tokens(tokens, self.config)
        batch, length = tokens.shape[:2]
        mask = self.random_mask(batch, length, tokens.device)  # (B, T)
        prediction = self.head(self.encode(tokens, mask)[-1])  # (B, T, M*F)
        error = (prediction - normalise_tokens(tokens).flatten(-2)).pow(2).mean(-1)  # (B, T)
        loss = error[mask].mean()
        metrics = {"loss": loss.detach(), "reconstruction": loss.detach(), "mask_fraction": mask.float().mean()}
        return loss, metrics

    @torch.no_grad()
    def features(self, tokens: torch.Tensor, context: int | None = None) -> dict:
        """Per-token embeddings without masking: ``embedding`` (last layer) and ``layer_1..layer_n``, ``(B, T, d)``.

        Any length: past ``context`` tokens (default ``max_len``) the sequence is read in windows of ``context``
        that overlap by half, each token in the window whose centre is nearest (:func:`sliding_windows`), so that
        it sees at least a quarter window on either side (all there is, near the ends).
        """
        check_tokens(tokens, self.config)
        batch, length = tokens.shape[:2]
        window = self.config.max_len if context is None else context
        assert 2 <= window <= self.config.max_len, f"context must lie in 2..{self.config.max_len}, got {context}"
        if length <= window:
            outputs = self.encode(tokens)
        else:
            starts, bounds = sliding_windows(length, window, causal=False)
            chunks = torch.stack([tokens[:, start : start + window] for start in starts], 1)  # (B, W, L, M, F)
            runs = [out.unflatten(0, (batch, len(starts))) for out in self.encode(chunks.flatten(0, 1))]  # (B, W, L, d)
            outputs = [stitch_windows(run, starts, bounds) for run in runs]  # (B, T, d) per layer
        return {"embedding": outputs[-1], **{f"layer_{i}": out for i, out in enumerate(outputs, start=1)}}


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def build_model(config: ModelConfig) -> WorldModel | MaskedAutoencoder:
    """The model ``config`` describes: a :class:`WorldModel` or, for ``architecture="masked_autoencoder"``, the MAE."""
    return MaskedAutoencoder(config) if config.architecture == "masked_autoencoder" else WorldModel(config)


def parameter_groups(model: WorldModel) -> dict[str, int]:
    """Trainable parameters of a world model per part (encoder, dynamics, and whichever heads it has)."""
    parts = ("encoder", "dynamics", "prediction_heads", "target_projection", "reconstruction_decoder",
             "readout_decoder")
    return {name.replace("_", " "): count_parameters(getattr(model, name)) for name in parts if hasattr(model, name)}


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
