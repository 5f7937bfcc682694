"""Audio of your own through a trained model: per-token latents of every part of the model, with timestamps.

From a shell (any length; WAV, FLAC, OGG or MP3 at any rate and channel count, converted to 16 kHz mono)::

    python -m wmlib encode my_recording.flac --model transformer-contrastive -o latents.npz

From Python::

    import wmlib
    encoding = wmlib.encode(audio, sample_rate=44_100)            # the book's default model
    encoding.latents["feature"].shape                              # (tokens, feature size)
    encoding.timestamps_ms                                         # the centre of each 40 ms token

The parts are those of ``model.features`` (:meth:`wmlib.model.models.WorldModel.features`): ``embedding`` (the
token encoder), ``feature`` (the state after token t), ``prior_feature`` (the state before it: the prediction),
``prior`` (the predicted embedding, or the RSSM's prior probabilities), and for the RSSM ``deter`` (``h_t``) and
``stoch`` (the posterior's probabilities).  Long recordings are fine: the RSSM runs through them as they are; the
transformer reads them in windows of the length it was trained on, overlapping by half, so that every token sees at
least half a window of its past (:meth:`wmlib.model.models.TransformerDynamics.observe`; ``context`` changes it).

Used by ``python -m wmlib encode``; the analyses read latents of the corpus the same way.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wmlib.data.audio import SAMPLE_RATE, AudioError, check_waveform, resample, to_mono
from wmlib.data.features import FeatureConfig, waveform_tokens
from wmlib.data.files import atomic_write


class ContextError(ValueError):
    """A context window the model cannot read (longer than its positions, or shorter than two tokens)."""


@dataclass
class Encoding:
    """Per-token latents of one recording.

    Attributes:
        latents: part name -> ``(T, size)`` float32 array, one row per token.
        timestamps_ms: ``(T,)`` the centre of each token in milliseconds from the start (HEAR's convention).
        info: the model (name, checkpoint, step, dynamics, objective) and the audio (duration, token length).
    """

    latents: dict[str, np.ndarray]
    timestamps_ms: np.ndarray
    info: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: tokens, duration, model, and the parts with their sizes."""
        parts = ", ".join(f"{name} {array.shape[1]}" for name, array in self.latents.items())
        context = self.info.get("context_tokens")
        windows = f", windows of {context} tokens" if context and context < len(self.timestamps_ms) else ""
        return (f"{len(self.timestamps_ms)} tokens ({self.info.get('duration_s', 0):.1f} s) through "
                f"{self.info.get('model', '?')} (step {self.info.get('step', '?')}{windows}): {parts}")

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` (loads without pickle): ``timestamps_ms``, one array per part, and ``info`` (JSON)."""
        path = Path(path)
        with atomic_write(path) as handle:
            np.savez(handle, timestamps_ms=self.timestamps_ms, info=json.dumps(self.info),
                     **{f"latent_{name}": array for name, array in self.latents.items()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Encoding:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            latents = {key[len("latent_"):]: data[key] for key in data.files if key.startswith("latent_")}
            return cls(latents, data["timestamps_ms"], json.loads(str(data["info"])))


def audio_tokens(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, config: FeatureConfig = FeatureConfig(),
                 name: str = "audio") -> np.ndarray:
    """A waveform -> its log-mel tokens ``(T, n_mels, frames_per_token)`` in dB, as the corpus is tokenized.

    ``audio`` is ``(samples,)`` or ``(channels, samples)`` at ``sample_rate``; other channel counts and rates are
    converted with an :class:`wmlib.data.audio.AudioConversionWarning` each.

    Raises:
        AudioError: empty, NaN, silent or out-of-range audio, or audio shorter than one token.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2 and audio.shape[0] > audio.shape[1]:  # (samples, channels), as soundfile reads
        audio = audio.T
    audio = check_waveform(resample(to_mono(audio, name), sample_rate, config.sample_rate, name), name)
    if len(audio) < config.token_samples:
        raise AudioError(f"{name}: {len(audio) / config.sample_rate * 1000:.0f} ms of audio is shorter than one "
                         f"token ({config.token_samples / config.sample_rate * 1000:.0f} ms); give a longer recording")
    return waveform_tokens(audio, config)


def encode(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, model: str | os.PathLike | None = None,
           profile: str | None = None, context: int | None = None, device: str = "cpu") -> Encoding:
    """Per-token latents of every part of a trained model for a recording of any length.

    Args:
        audio: ``(samples,)`` or ``(channels, samples)`` float audio in [-1, 1].
        sample_rate: its rate in Hz (resampled to 16 kHz when it differs).
        model: a named model (:data:`wmlib.model.runs.MODELS`; default the book's default model), a run
            directory, or a ``checkpoints/step-*`` directory.
        profile: the profile a named model was trained on (default: ``$WMLIB_PROFILE`` or ``default``).
        context: the most tokens the transformer (and the masked autoencoder) reads at once; a longer recording is
            read in windows of this length that overlap by half.  Default: the window the model was trained on
            (``seq_len`` in its ``config.json``, 64 tokens = 2.56 s for the book's models), since its positions
            past that were never trained; at most ``max_len - 1``.  The RSSM reads any length at once.
        device: where to run the model.

    Returns:
        An :class:`Encoding`.

    Raises:
        AudioError: unusable audio (the message names the fix).
        wmlib.model.runs.UnknownModelError: a name that is neither a named model nor a run directory.
        wmlib.model.checkpoints.CheckpointError: a named model that is not trained yet (the message names the
            command that trains it), or a damaged checkpoint.
    """
    import torch

    from .checkpoints import load_model, read_header, resolve_checkpoint
    from .runs import locate_model

    name, path = locate_model(model, profile)
    tokens = audio_tokens(audio, sample_rate)  # (T, M, F)
    network, model_config = load_model(path, device)
    weights, config_path = resolve_checkpoint(path)
    step = read_header(weights).get("step", "?")
    if model_config.architecture == "world_model" and model_config.dynamics == "rssm":
        context = None  # recurrent: every token sees the whole past
    else:
        if context is None:  # the window it was trained on
            context = json.loads(config_path.read_text()).get("train", {}).get("seq_len")
        # the transformer's start position takes one of its max_len positions; the masked autoencoder has none
        limit = model_config.max_len - (model_config.architecture == "world_model")
        if context is not None and not 2 <= context <= limit:
            raise ContextError(f"a context of {context} tokens is out of range: give 2..{limit} tokens for this model")
    with torch.no_grad():
        parts = network.features(torch.as_tensor(tokens, device=device)[None], context=context)  # (1, T, ·) each
    latents, seen = {}, set()
    order = ["embedding", "feature", "prior_feature", "prior"]  # then deter, stoch (RSSM), layer_* (MAE)
    for part in sorted(parts, key=lambda key: order.index(key) if key in order else len(order)):
        if id(parts[part]) not in seen:  # the transformer's deter is its feature: written once, as feature
            seen.add(id(parts[part]))
            latents[part] = parts[part][0].float().cpu().numpy()
    config = FeatureConfig()
    token_ms = config.token_samples / config.sample_rate * 1000
    info = {"model": name, "checkpoint": str(path), "step": int(step) if str(step).isdigit() else step,
            "architecture": model_config.architecture, "dynamics": model_config.dynamics,
            "objective": model_config.objective, "duration_s": max(np.shape(audio)) / sample_rate, "token_ms": token_ms,
            "context_tokens": context, "input_sample_rate": sample_rate}
    return Encoding(latents, (np.arange(len(tokens)) + 0.5) * token_ms, info)
