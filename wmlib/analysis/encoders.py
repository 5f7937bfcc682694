"""The encoders the book compares, registered by name, all speaking the HEAR API (:mod:`.hear_api`).

- hand-made: ``log-mel`` (the token's 64 x 4 dB values; ``stacked``: with the 3 tokens before it) and ``MFCC``
  (20 coefficients per 10 ms frame, the same two layers), exactly the probing chapters' baselines;
- the book's models: ``world model`` (the default model: ``encoder``, ``prior``, ``context``, ``feature``), its
  ``random init`` control (the same run's step-0 checkpoint), its ``permuted weights`` control, the
  ``masked autoencoder`` (``layer_1`` ..) and the ``RSSM`` (``encoder``, ``deterministic``, ``stochastic``,
  ``prior``, ``feature``);
- pretrained networks whose weights ship in their PyPI wheels (:mod:`.pretrained`): pitch trackers (CREPE tiny and
  full, PESTO, FCPE, SwiftF0, Basic Pitch), a speaker encoder (Resemblyzer) and a voice-activity detector (Silero);
- any installed HEAR module: ``hear:<module>`` (e.g. ``hear:hearbaseline``, or ``hear:wmlib.hear``, the world model
  through its own HEAR module).

An encoder that cannot load here is reported with its reason (:func:`load_encoders`), never dropped silently.
Add one with :func:`register_encoder`::

    @register_encoder("my encoder", "what it is")
    def my_encoder(profile):
        return MyHearModel()   # a HearModel: layer_embeddings(audio) -> ({layer: (n, frames, D)}, timestamps_ms)

Used by the chapter "Representational similarity" (through :mod:`wmlib.analysis.rsa`).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wmlib.data.features import FeatureConfig

from .hear_api import TOKEN_MS, EncoderUnavailable, HearModel, load_hear_module
from .representations import BASELINE_CONTEXT, named_parts, stack_block


@dataclass(frozen=True)
class EncoderEntry:
    """A registered encoder: ``factory(profile) -> HearModel``, a one-line description and its family."""

    factory: Callable[[str | None], HearModel]
    description: str
    family: str


#: name -> :class:`EncoderEntry`, in the order the book shows them.
ENCODERS: dict[str, EncoderEntry] = {}


def register_encoder(name: str, description: str, family: str = "yours"):
    """Decorator: register ``factory(profile) -> HearModel`` under ``name`` (replacing one of the same name)."""

    def decorate(factory):
        ENCODERS[name] = EncoderEntry(factory, description, family)
        return factory

    return decorate


def _token_frames(audio: np.ndarray) -> list[np.ndarray]:
    """Each sound's log-mel tokens ``(T, M, F)`` dB, exactly as the corpus is tokenized."""
    from wmlib.model.encode import audio_tokens

    return [audio_tokens(sound) for sound in audio]


def _token_timestamps(n_tokens: int) -> np.ndarray:
    return (np.arange(n_tokens) + 0.5) * TOKEN_MS  # the centre of each token, ms


def _batch(per_sound: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-sound ``{layer: (T, D)}`` of equal T -> ``{layer: (n, T, D)}`` and the token timestamps ``(n, T)``."""
    lengths = {len(next(iter(sound.values()))) for sound in per_sound}
    assert len(lengths) == 1, f"sounds of a batch must have equal length; got {sorted(lengths)} tokens"
    layers = {name: np.stack([sound[name] for sound in per_sound]).astype(np.float32) for name in per_sound[0]}
    return layers, np.tile(_token_timestamps(lengths.pop()), (len(per_sound), 1))


class LogMelEncoder(HearModel):
    """The token's log-mel (64 bands x 4 frames, dB): ``token``; and stacked with the 3 tokens before it."""

    name, layers = "log-mel", ("stacked", "token")
    identity = "log-mel-1"

    def __init__(self):
        config = FeatureConfig()
        self.timestamp_embedding_size = self.scene_embedding_size = (
            BASELINE_CONTEXT * config.n_mels * config.frames_per_token)

    def per_token(self, tokens: np.ndarray) -> np.ndarray:
        return tokens.reshape(len(tokens), -1)  # (T, M * F)

    def layer_embeddings(self, audio):
        sounds = []
        for tokens in _token_frames(audio):
            token = self.per_token(tokens)
            sounds.append({"stacked": stack_block(token), "token": token})
        return _batch(sounds)


class MfccEncoder(LogMelEncoder):
    """20 MFCCs per 10 ms frame of the token's log-mel: ``token``; and stacked with the 3 tokens before it."""

    name, n_mfcc = "MFCC", 20
    identity = "mfcc-1"

    def __init__(self):
        self.timestamp_embedding_size = self.scene_embedding_size = (
            BASELINE_CONTEXT * self.n_mfcc * FeatureConfig().frames_per_token)

    def per_token(self, tokens):
        import librosa

        mfcc = librosa.feature.mfcc(S=tokens, n_mfcc=self.n_mfcc)  # (T, n_mfcc, F)
        return mfcc.reshape(len(mfcc), -1).astype(np.float32)


class WorldModelEncoder(HearModel):
    """A checkpoint of the book's models (world model or masked autoencoder): every part per token.

    Args:
        path: a run directory or a ``checkpoints/step-*`` directory.
        name: what the book calls it.
        context: tokens read at once (default: the window it was trained on; the RSSM reads any length).
        permute_seed: shuffle the entries of every weight tensor with this seed (Tuckute et al.'s permuted-weights
            control: the weights' distribution kept, their structure gone).
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None, context: int | None = None,
                 permute_seed: int | None = None):
        from wmlib.model.checkpoints import CheckpointError, load_model, read_header, resolve_checkpoint

        from .representations import model_context

        try:
            weights, _ = resolve_checkpoint(path)
            self.model, self.model_config = load_model(path)
        except (CheckpointError, FileNotFoundError) as error:
            raise EncoderUnavailable(f"{name or path}: {error}") from error
        header = read_header(weights)
        self.path, self.step = Path(path), int(header.get("step", -1))
        self.name = name or self.path.name
        self.identity = f"checkpoint:{header.get('content_sha256', weights)}"
        if permute_seed is not None:
            import torch

            generator = torch.Generator().manual_seed(permute_seed)
            with torch.no_grad():
                for parameter in self.model.parameters():
                    flat = parameter.view(-1)
                    flat.copy_(flat[torch.randperm(flat.numel(), generator=generator)])
            self.identity += f":permuted-{permute_seed}"
        self.context = context if context is not None else model_context(path)
        probe = named_parts(self.model, self.model_config, np.zeros((2, 64, 4), np.float32) - 80.0, self.context)
        self.layers = tuple(probe)
        self.layer_sizes = {name: int(array.shape[1]) for name, array in probe.items()}
        if "feature" in probe:  # the state after the token first: HEAR's default embedding
            self.layers = ("feature", *[name for name in probe if name != "feature"])
        self.timestamp_embedding_size = self.scene_embedding_size = int(probe[self.layers[0]].shape[1])

    def layer_embeddings(self, audio):
        return _batch([named_parts(self.model, self.model_config, tokens, self.context)
                       for tokens in _token_frames(audio)])


def _run_checkpoint(name: str, profile: str | None, step: int | None = None) -> Path:
    from wmlib.model.runs import run_dir

    directory = run_dir(name, profile)
    return directory if step is None else directory / "checkpoints" / f"step-{step:06d}"


def world_model_encoder(model: str, profile: str | None = None, step: int | None = None,
                        name: str | None = None, permute_seed: int | None = None) -> WorldModelEncoder:
    """A named model of the book (``wmlib.model.runs.MODELS``) at its final or a kept ``step``, as an encoder."""
    return WorldModelEncoder(_run_checkpoint(model, profile, step), name or model, permute_seed=permute_seed)


def _register_builtins() -> None:
    from wmlib.model.runs import DEFAULT_MODEL

    register_encoder("log-mel", "the token's log-mel spectrogram (64 bands x 4 frames, dB), with the 3 tokens "
                     "before it", "hand-made")(lambda profile: LogMelEncoder())
    register_encoder("MFCC", "20 MFCCs per 10 ms frame, with the 3 tokens before it", "hand-made")(
        lambda profile: MfccEncoder())
    register_encoder("world model", "the book's default model (transformer dynamics, contrastive objective)",
                     "world model")(lambda profile: world_model_encoder(DEFAULT_MODEL, profile, name="world model"))
    register_encoder("random init", "the default model at initialisation (its run's step 0)", "control")(
        lambda profile: world_model_encoder(DEFAULT_MODEL, profile, step=0, name="random init"))
    register_encoder("permuted weights", "the default model with each weight tensor's entries shuffled",
                     "control")(lambda profile: world_model_encoder(DEFAULT_MODEL, profile, name="permuted weights",
                                                                    permute_seed=0))
    register_encoder("masked autoencoder", "reconstructs masked tokens (the old way), same data", "control")(
        lambda profile: world_model_encoder("masked-autoencoder", profile, name="masked autoencoder"))
    register_encoder("RSSM", "the DreamerV2 recurrent state-space model, contrastive objective", "world model")(
        lambda profile: world_model_encoder("rssm-contrastive", profile, name="RSSM"))
    from . import pretrained

    for name, (factory, description) in pretrained.PRETRAINED.items():
        register_encoder(name, description, "pretrained")(lambda profile, factory=factory: factory())


_register_builtins()


def load_encoder(name: str, profile: str | None = None) -> HearModel:
    """The registered encoder ``name``, or ``hear:<module>`` for an installed HEAR module.

    Raises:
        EncoderUnavailable: unknown name, or the encoder cannot load here (the message says why).
    """
    if name.startswith("hear:"):
        try:
            encoder = load_hear_module(name[len("hear:"):])
        except Exception as error:  # an installed module may fail in any way: report it, do not crash
            raise EncoderUnavailable(f"{name}: {type(error).__name__}: {error}") from error
        encoder.name = name
        return encoder
    if name not in ENCODERS:
        raise EncoderUnavailable(f"unknown encoder {name!r}; registered: {', '.join(ENCODERS)} (or hear:<module>)")
    try:
        encoder = ENCODERS[name].factory(profile)
    except EncoderUnavailable:
        raise
    except Exception as error:
        raise EncoderUnavailable(f"{name}: {type(error).__name__}: {error}") from error
    encoder.name = name
    return encoder


def load_encoders(names, profile: str | None = None) -> tuple[dict[str, HearModel], pd.DataFrame]:
    """Load every encoder of ``names`` that can load; the others are returned with their reasons.

    Returns:
        ``{name: encoder}`` and a table of the ones left out (``encoder``, ``reason``).
    """
    loaded, failed = {}, []
    for name in names:
        try:
            loaded[name] = load_encoder(name, profile)
        except EncoderUnavailable as error:
            failed.append({"encoder": name, "reason": str(error)})
    return loaded, pd.DataFrame(failed, columns=["encoder", "reason"])


def encoder_table(names=None) -> pd.DataFrame:
    """The registered encoders: name, family, description."""
    names = names or list(ENCODERS)
    return pd.DataFrame([{"encoder": name, "family": ENCODERS[name].family,
                          "description": ENCODERS[name].description} for name in names]).set_index("encoder")
