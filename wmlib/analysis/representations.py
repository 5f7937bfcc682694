"""Representations per token: every part of a trained model, its controls, and the hand-made baselines.

A :class:`Representations` holds, for the tokens of a :class:`~wmlib.data.features.TokenSet`, one ``(N, D)`` array
per part.  Parts, by model:

- world model, transformer dynamics: ``encoder`` (the token's embedding), ``prior`` (the predicted embedding of
  token t, from tokens < t), ``context`` (the state before token t) and ``feature`` (the state after it);
- world model, RSSM: ``encoder``, ``deterministic`` (h_t, from tokens < t), ``stochastic`` (the posterior's
  probabilities of z_t), ``prior`` (the prior's probabilities of z_t, from tokens < t) and ``feature`` (h_t and z_t);
- masked autoencoder: ``layer_1`` .. ``layer_n`` (``layer_n`` is its embedding);
- baselines (:func:`baseline_representations`): ``log-mel`` and ``MFCC`` of the token and the tokens before it,
  stacked (:data:`BASELINE_CONTEXT` tokens, 160 ms).

Model representations are cached on disk under ``<data>/<profile>/representations/``, keyed by the checkpoint's
content hash, the tokens (their utterances) and the context, so the book's chapters compute each one once.

Used by the chapters "Pitch and energy" and "Phones, sources and voices".
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet
from wmlib.data.files import atomic_write

REPRESENTATIONS_VERSION = "representations-1"
#: Tokens stacked by the log-mel and MFCC baselines (and read by the supervised network): the token and 3 before it.
BASELINE_CONTEXT = 4
#: The names the book gives the parts of ``WorldModel.features``, per dynamics.
PART_NAMES = {
    "transformer": {"embedding": "encoder", "prior": "prior", "prior_feature": "context", "feature": "feature"},
    "rssm": {"embedding": "encoder", "deter": "deterministic", "stoch": "stochastic", "prior": "prior",
             "feature": "feature"},
}


@dataclass
class Representations:
    """Per-token arrays of one model (or baseline) for the tokens of one :class:`TokenSet`.

    Attributes:
        parts: part name -> ``(N, D)`` float32 array, rows aligned with the token set's labels.
        info: where they came from (model, checkpoint, step, context, tokens).
    """

    parts: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)

    def __getitem__(self, part: str) -> np.ndarray:
        if part not in self.parts:
            raise KeyError(f"no part {part!r}; this representation has {', '.join(self.parts)}")
        return self.parts[part]

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with atomic_write(path) as handle:
            np.savez(handle, info=json.dumps(self.info), **{f"part_{k}": v for k, v in self.parts.items()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Representations:
        with np.load(path, allow_pickle=False) as data:
            parts = {key[len("part_"):]: data[key] for key in data.files if key.startswith("part_")}
            return cls(parts, json.loads(str(data["info"])))


def utterance_slices(labels: pd.DataFrame) -> list[tuple[str, slice]]:
    """``(utt_id, rows)`` for each utterance, in order; checks that its tokens are contiguous and in time order."""
    utt = labels["utt_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, utt[1:] != utt[:-1]])
    ends = np.r_[starts[1:], len(utt)]
    if len(set(utt[starts])) != len(starts):
        raise ValueError("the tokens of an utterance must be contiguous (select whole utterances, in order)")
    return [(utt[s], slice(s, e)) for s, e in zip(starts, ends)]


def select_utterances(tokens: TokenSet, per_group: int, seed: int = 0) -> TokenSet:
    """A seeded subsample of whole utterances: at most ``per_group`` of each source, in-distribution (train, valid,
    test) and held-out separately, in corpus order.  The probes' token set."""
    table = tokens.labels.groupby("utt_id", sort=False).first()[["source", "split"]]
    rng = np.random.default_rng(seed)
    chosen = []
    for _, group in table.groupby([table["source"], table["split"] == "heldout"], sort=True):
        names = group.index.to_numpy()
        chosen.extend(rng.choice(names, size=min(per_group, len(names)), replace=False))
    return tokens.select(tokens.labels["utt_id"].isin(set(chosen)).to_numpy())


def tokens_key(tokens: TokenSet) -> str:
    """A short hash of which tokens these are (utterance ids and token counts) and of their values."""
    hasher = hashlib.sha256()
    for utt_id, rows in utterance_slices(tokens.labels):
        hasher.update(f"{utt_id}:{rows.stop - rows.start};".encode())
    hasher.update(np.ascontiguousarray(tokens.mel[:: max(1, len(tokens.mel) // 64)]).tobytes())
    return hasher.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------------
# Baselines


def stack_block(block: np.ndarray, context: int = BASELINE_CONTEXT) -> np.ndarray:
    """One utterance ``(T, D)`` -> ``(T, context * D)``: each token's row with the rows of the ``context - 1`` tokens
    before it (the first token repeated where there is no past yet)."""
    padded = np.concatenate([np.repeat(block[:1], context - 1, 0), block])  # (T + context - 1, D)
    return np.concatenate([padded[k : k + len(block)] for k in range(context)], axis=1)


def stack_past(per_token: np.ndarray, labels: pd.DataFrame, context: int = BASELINE_CONTEXT) -> np.ndarray:
    """``(N, D)`` -> ``(N, context * D)``: :func:`stack_block` within each utterance of ``labels``."""
    out = np.empty((len(per_token), context * per_token.shape[1]), dtype=np.float32)
    for _, rows in utterance_slices(labels):
        out[rows] = stack_block(per_token[rows], context)
    return out


def baseline_representations(tokens: TokenSet, context: int = BASELINE_CONTEXT, n_mfcc: int = 20) -> Representations:
    """``log-mel`` (the token's 64 x 4 dB values) and ``MFCC`` (``n_mfcc`` coefficients per 10 ms frame, from the
    same log-mel), each stacked over the token and the ``context - 1`` tokens before it."""
    import librosa

    mel = tokens.mel  # (N, M, F) dB
    mfcc = librosa.feature.mfcc(S=mel, n_mfcc=n_mfcc)  # (N, n_mfcc, F)
    parts = {"log-mel": stack_past(mel.reshape(len(mel), -1), tokens.labels, context),
             "MFCC": stack_past(mfcc.reshape(len(mfcc), -1).astype(np.float32), tokens.labels, context)}
    return Representations(parts, {"model": "baselines", "context_tokens": context, "n_mfcc": n_mfcc})


# ----------------------------------------------------------------------------------------------------------------
# Models


def model_context(path: str | os.PathLike) -> int | None:
    """The window a checkpoint's model reads at once: the ``seq_len`` it was trained on (``None`` for the RSSM,
    which reads any length)."""
    from wmlib.model.checkpoints import resolve_checkpoint

    _, config_path = resolve_checkpoint(path)
    saved = json.loads(Path(config_path).read_text())
    if saved["model"].get("architecture", "world_model") == "world_model" and saved["model"]["dynamics"] == "rssm":
        return None
    return saved.get("train", {}).get("seq_len")


def named_parts(model, model_config, tokens_mel: np.ndarray, context: int | None) -> dict[str, np.ndarray]:
    """The book's parts of ``model`` for one utterance ``(T, M, F)`` dB: ``name -> (T, D)`` float32."""
    import torch

    with torch.no_grad():
        latents = model.features(torch.as_tensor(tokens_mel)[None], context=context)  # (1, T, ·) each
    if model_config.architecture == "masked_autoencoder":
        names = {key: key for key in latents if key.startswith("layer_")}
    else:
        names = PART_NAMES[model_config.dynamics]
    return {name: latents[key][0].float().numpy() for key, name in names.items()}


def model_representations(path: str | os.PathLike, tokens: TokenSet, profile: str | None = None,
                          cache: bool = True, progress: bool = False) -> Representations:
    """Every part of the model at ``path`` (a run or ``checkpoints/step-*`` directory) for every token of ``tokens``.

    Utterances of any length: the transformer and the masked autoencoder read them in windows of the length they
    were trained on (:func:`model_context`), overlapping by half; the RSSM reads them whole.  Cached under
    ``<data>/<profile>/representations/`` (pass ``cache=False`` to compute afresh without writing).
    """
    from tqdm import tqdm

    from wmlib.data.profiles import data_root, get_profile
    from wmlib.model.checkpoints import load_model, read_header, resolve_checkpoint

    weights, _ = resolve_checkpoint(path)
    header = read_header(weights)
    context = model_context(path)
    key = json.dumps([header.get("content_sha256", str(weights)), tokens_key(tokens), context,
                      REPRESENTATIONS_VERSION])
    cached = (data_root() / get_profile(profile).name / "representations"
              / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz")
    if cache and cached.is_file():
        return Representations.load(cached)
    model, model_config = load_model(path)
    pieces: dict[str, list] = {}
    slices = utterance_slices(tokens.labels)
    for _, rows in tqdm(slices, desc=f"representations ({Path(path).name})", unit="utt", disable=not progress):
        for name, array in named_parts(model, model_config, tokens.mel[rows], context).items():
            pieces.setdefault(name, []).append(array)
    parts = {name: np.concatenate(arrays).astype(np.float32) for name, arrays in pieces.items()}
    info = {"checkpoint": str(path), "step": int(header.get("step", -1)), "context_tokens": context,
            "architecture": model_config.architecture, "dynamics": model_config.dynamics,
            "objective": model_config.objective, "tokens": len(tokens.mel)}
    result = Representations(parts, info)
    if cache:
        result.save(cached)
    return result


def horizon_representations(path: str | os.PathLike, tokens: TokenSet, horizons=(1, 2, 4, 8),
                            profile: str | None = None, cache: bool = True,
                            batch_windows: int = 16) -> dict[str, np.ndarray]:
    """The transformer's prediction states: for token t and horizon h, the state from which the model imagines
    token t after observing tokens up to t - h and imagining the h - 1 tokens in between (open loop).

    Utterances are read in consecutive windows of the training length (so positions stay trained); a token whose
    window holds fewer than h tokens before it has no state (NaN row).  Windows of equal length run in batches of
    ``batch_windows``.

    Cached like :func:`model_representations`.

    Returns:
        ``{h: (N, d)}`` float32, the imagined ``prior_feature``, and ``{f"observed {h}": (N, d)}``, the observed
        state after token t - h (what the model knew when it began to imagine).
    """
    import torch

    from wmlib.data.profiles import data_root, get_profile
    from wmlib.model.checkpoints import load_model, read_header, resolve_checkpoint

    weights, _ = resolve_checkpoint(path)
    key = json.dumps([read_header(weights).get("content_sha256", str(weights)), tokens_key(tokens), list(horizons),
                      "horizon", REPRESENTATIONS_VERSION])
    cached = (data_root() / get_profile(profile).name / "representations"
              / f"horizon-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz")
    if cache and cached.is_file():
        with np.load(cached, allow_pickle=False) as data:
            return {int(k) if k.isdigit() else k: data[k] for k in data.files}
    model, model_config = load_model(path)
    assert model_config.architecture == "world_model" and model_config.dynamics == "transformer", (
        "prediction states along the horizon are defined here for the transformer dynamics")
    window = model_context(path) or model_config.max_len - 1
    size = model_config.d_model
    out = {h: np.full((len(tokens.mel), size), np.nan, np.float32) for h in horizons}
    out.update({f"observed {h}": np.full((len(tokens.mel), size), np.nan, np.float32) for h in horizons})
    # Windows of equal length run as one batch (most are full windows): (first row, length) per window.
    windows = [(begin, min(window, rows.stop - begin)) for _, rows in utterance_slices(tokens.labels)
               for begin in range(rows.start, rows.stop, window)]
    by_length: dict[int, list[int]] = {}
    for begin, length in windows:
        by_length.setdefault(length, []).append(begin)
    with torch.no_grad():
        for length, begins in by_length.items():
            for first in range(0, len(begins), batch_windows):
                batch = begins[first : first + batch_windows]
                chunk = torch.as_tensor(np.stack([tokens.mel[b : b + length] for b in batch]))  # (B, L, M, F)
                embeddings = model.encoder(chunk)  # (B, L, E)
                observed = model.dynamics.observe(embeddings, context=window)["feature"]  # (B, L, d)
                if length < 2:
                    continue
                # One roll of the longest horizon from every context end serves every horizon: its step h is the
                # state that predicts token end + h after imagining the h - 1 tokens before it.
                ends = torch.arange(length - 1)  # (N,)
                steps = min(max(horizons), length - 1)
                imagined = model.dynamics.imagine_from_ends(embeddings, ends, steps)["prior_feature"]  # (B, N, H, d)
                for h in horizons:
                    if length <= h:
                        continue
                    for row, begin in enumerate(batch):  # token t = end + h, for ends 0 .. length - h - 1
                        out[h][begin + h : begin + length] = imagined[row, : length - h, h - 1].float().numpy()
                        out[f"observed {h}"][begin + h : begin + length] = observed[row, : length - h].float().numpy()
    if cache:
        with atomic_write(cached) as handle:
            np.savez(handle, **{str(k): v for k, v in out.items()})
    return out
