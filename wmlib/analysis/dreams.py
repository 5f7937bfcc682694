"""Dreams: observe ``k`` tokens, then let the model imagine ``n`` more, open-loop, several times.

DreamerV3 judges a world model by its open-loop reports: observe part of a sequence, imagine the rest, and put the
truth, the imagination and their difference side by side.  Here a dream is that imagination, for sound.

**How each kind of model samples.**

- The RSSM (DreamerV2) has a stochastic state: each imagined step draws the categorical ``z`` from the prior
  ``p(z | h)``, sharpened or flattened by a temperature (``p^(1/T)``, renormalised; ``T = 0`` takes the mode), and
  the dreamed spectrogram is the readout decoder's reading of the imagined state.
- The transformer has no distribution of its own over its next embedding: its imagination feeds back the embedding
  it regresses (a mean, which blurs and drifts).  Its stated stochastic path here is **sampling among candidate
  tokens by contrastive score**: at each step the contrastive head's prediction is scored against a bank of real
  training tokens, and a token is drawn with probability ``softmax(score / (τ T))``, ``τ`` being the InfoNCE
  temperature the model was trained with.  Why this one: InfoNCE trains exactly that softmax, so at ``T = 1`` it
  is the model's own estimate of which token comes next (among the bank's); ``T = 0`` takes the best-scoring one.
  The drawn token's embedding is fed back, so the dream stays on the manifold of real tokens rather than drifting
  into embeddings the encoder never produces, and it can be seen and heard as it is (its log-mel), with exact
  labels (the bank's), without a decoder.  The cost: a dream can only say what the bank holds, so the bank must be
  large and drawn from the training split only.  ``method="decode"`` keeps the deterministic roll-out of the
  regressed embedding, decoded by the readout decoder, for comparison.

Used by the chapter "Dreams" and by ``python -m wmlib dream``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet

DREAM_METHODS = ("candidates", "decode", "prior")  # transformer by candidates / by decoding; RSSM prior sampling
BANK_SIZE = 8192
#: The temperature ``python -m wmlib dream`` and the chapters use, chosen on a criterion no chapter reports as a
#: finding: on the *validation* split, the default model's dreams at 0.4 move as fast as the real continuations
#: (mean log-mel distance between consecutive tokens; ``bench/dream_temperature.py``,
#: :func:`wmlib.analysis.coherence.temperature_criterion`).  At 1 its distribution over 8,192 candidates is so flat
#: that the dream jumps twice as fast as real sound; at 0.1 it moves half as fast.
DEFAULT_TEMPERATURE = 0.4


class DreamError(ValueError):
    """A dream that cannot be dreamed: no context, no horizon, a method the model does not have."""


@dataclass
class CandidateBank:
    """Real tokens a transformer's dream is drawn from (``method="candidates"``), with their labels.

    Attributes:
        mel: ``(N, n_mels, frames)`` dB.
        labels: one row per token (the corpus's per-token labels).
        embedding: ``(N, E)`` torch tensor, the encoder's embedding of each token (what a dream feeds back).
        keys: ``(N, P)`` torch tensor, each token's L2-normalised target projection (what predictions are scored
            against, as in training).
    """

    mel: np.ndarray
    labels: pd.DataFrame
    embedding: object
    keys: object

    @classmethod
    def from_tokens(cls, model, tokens: TokenSet, size: int = BANK_SIZE, seed: int = 0, split: str = "train",
                    batch_size: int = 4096) -> CandidateBank:
        """A seeded random draw of ``size`` tokens of ``split`` (default the training split: a dream must never
        draw the continuation it is judged against), embedded by ``model``."""
        import torch

        if not model.config.contrastive:
            raise DreamError("a candidate bank scores tokens with the contrastive head; this model has none "
                             f"(objective {model.config.objective!r}): dream with method='decode'")
        index = np.flatnonzero(tokens.labels["split"].to_numpy() == split)
        if not len(index):
            raise DreamError(f"no token of split {split!r} for the candidate bank")
        if len(index) > size:
            index = np.sort(np.random.default_rng(seed).choice(index, size, replace=False))
        mel = tokens.mel[index]
        embeddings, keys = [], []
        model.eval()
        with torch.no_grad():
            for start in range(0, len(mel), batch_size):
                batch = torch.as_tensor(mel[start:start + batch_size])[None]  # (1, n, M, F)
                embedding = model.encoder(batch)[0]  # (n, E)
                embeddings.append(embedding)
                keys.append(torch.nn.functional.normalize(model.target_projection(embedding), dim=-1))  # (n, P)
        return cls(mel, tokens.labels.iloc[index].reset_index(drop=True), torch.cat(embeddings), torch.cat(keys))

    def __len__(self) -> int:
        return len(self.mel)


@dataclass
class Dreams:
    """What :func:`dream` returns: ``B`` contexts, ``S`` samples each, ``H`` imagined tokens.

    Attributes:
        context: ``(B, K, n_mels, frames)`` dB, the observed tokens.
        mel: ``(B, S, H, n_mels, frames)`` dB, the dreamed tokens.
        feature: ``(B, S, H, d)`` the model's state after each dreamed token (the part probes read: what
            ``model.features(...)["feature"]`` is for an observed token).
        prediction: ``(B, S, H, P)`` the contrastive head's L2-normalised prediction of each dreamed token, made
            before it (score it against :meth:`wmlib.model.models.WorldModel.embed`); ``None`` without a head.
        picked: ``(B, S, H)`` indices into the bank of the drawn tokens (``method="candidates"``), else ``None``.
        info: method, temperature, samples, seed, model.
    """

    context: np.ndarray
    mel: np.ndarray
    feature: np.ndarray
    prediction: np.ndarray | None
    picked: np.ndarray | None
    info: dict = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return self.mel.shape[2]

    def sequence(self, index: int = 0, sample: int = 0) -> np.ndarray:
        """Context followed by one dream: ``(K + H, n_mels, frames)`` dB."""
        return np.concatenate([self.context[index], self.mel[index, sample]])


def default_method(model) -> str:
    """``prior`` for the RSSM, ``candidates`` for a contrastive transformer, else ``decode``."""
    if model.config.dynamics == "rssm":
        return "prior"
    return "candidates" if model.config.contrastive else "decode"


def _draw(logits, temperature: float, generator):
    """Indices ``(R,)`` drawn from ``softmax(logits / temperature)`` rows ``(R, N)``; the argmax at temperature 0
    (Gumbel-max with the seeded ``generator``)."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-10, 1.0)
    return (logits / temperature - torch.log(-torch.log(uniform))).argmax(-1)


def _transformer_states(dynamics, window: int):
    """A stepper over the transformer: ``feed(embeddings)`` appends ``(R, n, E)`` inputs and returns the output after
    the last one ``(R, d)``.  Within ``window`` embeddings it keeps a key-value cache; past it, every step re-reads the
    most recent ``window`` embeddings from the start position (as observation of a long recording does)."""
    import torch

    caches = [[] for _ in dynamics.transformer.layers]
    history: list = []

    def feed(embeddings):
        history.append(embeddings)
        seen = sum(part.shape[1] for part in history)
        if seen > window:
            return dynamics._run(torch.cat(history, 1)[:, -window:])[:, -1]
        inputs = dynamics.input_projection(embeddings)  # (R, n, d)
        if len(history) == 1:  # the first call: the start position comes first
            start = dynamics.start.expand(len(inputs), 1, -1).to(inputs.dtype)
            return dynamics._run_cached(torch.cat([start, inputs], 1), 0, caches)[:, -1]
        return dynamics._run_cached(inputs, seen - embeddings.shape[1] + 1, caches)[:, -1]

    return feed


def dream(model, context: np.ndarray, horizon: int, temperature: float = 1.0, samples: int = 1, seed: int = 0,
          bank: CandidateBank | None = None, method: str | None = None, window: int | None = None) -> Dreams:
    """Observe ``context`` and imagine ``horizon`` tokens, ``samples`` times per context.

    Args:
        model: a :class:`wmlib.model.models.WorldModel` (put in eval mode here).
        context: ``(K, n_mels, frames)`` or ``(B, K, n_mels, frames)`` dB, ``K >= 1``.
        horizon: tokens to imagine, ``>= 1``.
        temperature: ``>= 0``; 1 = the model's own distribution, 0 = its mode (every sample the same).  The
            ``decode`` method is deterministic: it dreams once, whatever ``samples`` and ``temperature`` say.
        samples: dreams per context.
        seed: the same seed gives the same dreams.
        bank: the candidate tokens (``method="candidates"``); see :class:`CandidateBank`.
        method: ``candidates`` / ``decode`` (transformer), ``prior`` (RSSM); default :func:`default_method`.
        window: the transformer's most embeddings at once (default ``max_len - 1``; give the ``seq_len`` it was
            trained on, as :func:`dream_audio` does, to stay within its trained positions).

    Returns:
        :class:`Dreams`.

    Raises:
        DreamError: an empty context, ``horizon < 1``, a negative temperature, or a method the model lacks.
    """
    import torch
    import torch.nn.functional as F

    context = np.asarray(context, dtype=np.float32)
    if context.ndim == 3:
        context = context[None]
    config = model.config
    if context.ndim != 4 or context.shape[2:] != (config.n_mels, config.frames_per_token):
        raise DreamError(f"context must be (tokens, {config.n_mels}, {config.frames_per_token}) dB or a batch of "
                         f"them, got {context.shape}")
    if context.shape[1] < 1:
        raise DreamError("a dream needs at least one observed token of context")
    if horizon < 1:
        raise DreamError(f"a dream of {horizon} tokens: give a horizon of at least one token")
    if temperature < 0 or samples < 1:
        raise DreamError(f"temperature must be >= 0 and samples >= 1, got {temperature} and {samples}")
    method = default_method(model) if method is None else method
    allowed = ("prior",) if config.dynamics == "rssm" else ("candidates", "decode")
    if method not in allowed:
        raise DreamError(f"method {method!r} is not one of this {config.dynamics} model's: {', '.join(allowed)}")
    if method == "candidates" and bank is None:
        raise DreamError("method='candidates' draws tokens from a CandidateBank: pass bank=CandidateBank.from_tokens("
                         "model, tokens)")
    if method == "decode" and (samples > 1 or temperature > 0):
        samples, temperature = 1, 0.0  # deterministic: one dream, the mean roll-out
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    batch, length = context.shape[:2]
    rows = torch.as_tensor(context).repeat_interleave(samples, 0)  # (B*S, K, M, F)
    with torch.no_grad():
        if method == "prior":
            features, predictions = _rssm_dream(model, rows, horizon, temperature, generator)
            mel, picked = model.decode(features), None
        else:
            dynamics = model.dynamics
            feed = _transformer_states(dynamics, window or config.max_len - 1)
            state = feed(model.encoder(rows))  # (R, d): after the context
            features, predictions, picks = [], [], []
            for _ in range(horizon):
                if method == "candidates":
                    prediction = F.normalize(model.prediction_heads[0](state), dim=-1)  # (R, P)
                    pick = _draw(prediction @ bank.keys.T / config.temperature, temperature, generator)  # (R,)
                    fed_back = bank.embedding[pick]  # (R, E)
                    picks.append(pick)
                    predictions.append(prediction)
                else:
                    fed_back = dynamics.next_embedding(state)  # (R, E), the regressed mean
                    if config.contrastive:
                        predictions.append(F.normalize(model.prediction_heads[0](state), dim=-1))
                state = feed(fed_back[:, None])  # (R, d): after the dreamed token
                features.append(state)
            features = torch.stack(features, 1)  # (R, H, d)
            predictions = torch.stack(predictions, 1) if predictions else None
            if method == "candidates":
                picked = torch.stack(picks, 1).numpy()  # (R, H)
                mel = torch.as_tensor(bank.mel[picked])  # (R, H, M, F)
            else:
                picked, mel = None, model.decode(features)

    def unflat(array):  # (B*S, ...) -> (B, S, ...)
        return None if array is None else array.reshape(batch, samples, *array.shape[1:])

    info = {"method": method, "temperature": temperature, "samples": samples, "seed": seed,
            "context_tokens": length, "horizon": horizon, "dynamics": config.dynamics}
    return Dreams(context, unflat(mel.float().numpy()), unflat(features.float().numpy()),
                  unflat(None if predictions is None else predictions.float().numpy()), unflat(picked), info)


def _rssm_dream(model, rows, horizon: int, temperature: float, generator):
    """The RSSM's dream: posterior modes over the context, then ``horizon`` prior draws at ``temperature``.
    Returns features ``(R, H, D + S*C)`` and the head's predictions ``(R, H, P)`` (or ``None``)."""
    import torch
    import torch.nn.functional as F

    rssm, config = model.dynamics, model.config
    observed = model.observe(rows, sample=False)
    deter, stoch = observed["deter"][:, -1], observed["stoch"][:, -1]  # (R, D), (R, S*C)
    features, predictions = [], []
    for _ in range(horizon):
        deter = rssm._gru(deter, rssm._gates_from_deter(deter) + rssm.gru_from_stoch(stoch))  # (R, D)
        probs = rssm._mixed_probs(rssm.prior(deter))  # (R, S, C)
        if config.contrastive:
            prior_feature = torch.cat([deter, probs.flatten(-2)], -1)
            predictions.append(F.normalize(model.prediction_heads[0](prior_feature), dim=-1))
        classes = _draw(probs.log().flatten(0, 1), temperature, generator)  # (R*S,)
        stoch = F.one_hot(classes, config.stoch_classes).to(deter.dtype).reshape(len(deter), -1)  # (R, S*C)
        features.append(torch.cat([deter, stoch], -1))
    return torch.stack(features, 1), (torch.stack(predictions, 1) if predictions else None)


# ----------------------------------------------------------------------------------------------------------------
# Baselines rolled out the same way


def copy_last_rollout(context: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed token, repeated: ``(B, K, M, F)`` -> ``(B, H, M, F)``."""
    return np.repeat(context[:, -1:], horizon, axis=1)


def linear_rollout(autoregression, context: np.ndarray, horizon: int) -> np.ndarray:
    """A :class:`wmlib.model.evaluate.LinearAutoregression` fit at horizon 1, fed its own predictions:
    ``(B, K, M, F)`` -> ``(B, H, M, F)`` dB.  ``K`` must be at least its order."""
    from wmlib.model.evaluate import Windows

    order = autoregression.order
    if context.shape[1] < order:
        raise DreamError(f"the linear roll-out needs {order} tokens of context, got {context.shape[1]}")
    sequence = context[:, -order:]
    for _ in range(horizon):
        windows = Windows(sequence[:, -order:], np.zeros(len(sequence)))
        step = autoregression.predict_mel(windows, 1, np.array([order - 1]))  # (B, 1, M, F)
        sequence = np.concatenate([sequence, step], 1)
    return sequence[:, order:]


# ----------------------------------------------------------------------------------------------------------------
# A reader's own file


def dream_audio(audio: np.ndarray, sample_rate: int, context_seconds: float = 2.0, seconds: float = 2.0,
                model: str | os.PathLike | None = None, profile: str | None = None,
                temperature: float = DEFAULT_TEMPERATURE, samples: int = 1, seed: int = 0,
                name: str = "audio") -> tuple[Dreams, dict]:
    """Dream on from the first ``context_seconds`` of a recording of your own, for ``seconds``.

    The transformer reads at most the window it was trained on (its ``seq_len``), sliding past it; its candidate
    bank is drawn from the training split of the profile it was trained on.  Used by ``python -m wmlib dream``.

    Returns:
        ``(dreams, info)``, ``info`` naming the model.

    Raises:
        wmlib.data.audio.AudioError: unusable audio; DreamError: a context longer than the recording, or a context
        or dream shorter than one token; wmlib.model.runs.UnknownModelError: a model that does not exist.
    """
    from wmlib.data.features import FeatureConfig, load_tokens
    from wmlib.model.checkpoints import load_model
    from wmlib.model.encode import audio_tokens
    from wmlib.model.runs import locate_model

    from .representations import model_context

    config = FeatureConfig()
    token_ms = 1000 / config.tokens_per_second
    context_tokens = int(round(context_seconds * config.tokens_per_second))
    horizon = int(round(seconds * config.tokens_per_second))
    if horizon < 1:
        raise DreamError(f"a dream of {seconds} s is shorter than one token ({token_ms:.0f} ms): give at least 0.04 s")
    if context_tokens < 1:
        raise DreamError(f"a context of {context_seconds} s is shorter than one token ({token_ms:.0f} ms): give at "
                         "least 0.04 s")
    model_name, directory = locate_model(model, profile)
    tokens = audio_tokens(audio, sample_rate, config, name=name)
    if len(tokens) < context_tokens:
        raise DreamError(f"{name} holds {len(tokens) / config.tokens_per_second:.2f} s of audio, less than the "
                         f"{context_seconds} s of context asked for: give a shorter context")
    network, _ = load_model(directory)
    method = default_method(network)
    bank = CandidateBank.from_tokens(network, load_tokens(profile, progress=False)) if method == "candidates" else None
    dreams = dream(network, tokens[:context_tokens], horizon, temperature, samples, seed, bank, method,
                   window=model_context(directory))
    return dreams, {"model": model_name, "method": method, "context_tokens": context_tokens, "horizon": horizon}
