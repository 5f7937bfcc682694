"""The HEAR API (Turian et al., 2022), which every encoder of the book speaks, and the 40 ms token grid.

A HEAR module is a Python module with three functions::

    load_model(model_file_path="") -> model     # model.sample_rate, .timestamp_embedding_size, .scene_embedding_size
    get_timestamp_embeddings(audio, model) -> (embeddings (n_sounds, n_frames, D), timestamps (n_sounds, n_frames))
    get_scene_embeddings(audio, model) -> (n_sounds, D)

where ``audio`` is a float32 tensor ``(n_sounds, n_samples)`` at ``model.sample_rate`` and timestamps are the
centres of the frames **in milliseconds**.  The book's own encoders are :class:`HearModel` subclasses: they
implement :meth:`HearModel.layer_embeddings` (every layer worth comparing, on the encoder's own time grid) and get the
HEAR functions from this module; :func:`load_hear_module` wraps any installed HEAR module (``hearbaseline``, a
reader's own) into the same comparisons; :func:`to_token_grid` brings any of them to the book's tokens (one vector
per 40 ms token: the mean of the frames whose centre falls inside it).

Used by the chapter "Representational similarity" (through :mod:`wmlib.analysis.encoders`).
"""
from __future__ import annotations

import importlib

import numpy as np

#: The book's token: 40 ms (4 frames of 10 ms, see ``FeatureConfig``).
TOKEN_MS = 40.0


class GridError(ValueError):
    """Embeddings, timestamps and tokens that do not line up (a clear message instead of a silent misalignment)."""


class EncoderUnavailable(RuntimeError):
    """An encoder that cannot load here (package missing, weights absent, ...): the message says why."""


class HearModel:
    """Base of the book's encoders: a HEAR model object with named layers.

    Subclasses set ``name``, ``sample_rate``, ``layers`` (layer names, the default one first) and
    ``timestamp_embedding_size`` / ``scene_embedding_size`` (of the default layer), and implement
    :meth:`layer_embeddings`.  They are plain objects (no ``nn.Module``): most wrap a network of another package.
    """

    name: str = "encoder"
    sample_rate: int = 16_000
    layers: tuple[str, ...] = ("embedding",)
    timestamp_embedding_size: int = 0
    scene_embedding_size: int = 0

    def layer_embeddings(self, audio: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every layer of the encoder on its own frame grid.

        Args:
            audio: ``(n_sounds, n_samples)`` float32 at ``self.sample_rate``.

        Returns:
            ``{layer: (n_sounds, n_frames, D) float32}`` and the frame centres ``(n_sounds, n_frames)`` in ms.
        """
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name}: {', '.join(self.layers)} at {self.sample_rate} Hz"


def _as_batch(audio, sample_rate: int) -> np.ndarray:
    """HEAR input checks: a 2-D float array ``(n_sounds, n_samples)`` with finite values."""
    array = audio.detach().cpu().numpy() if hasattr(audio, "detach") else np.asarray(audio)
    if array.ndim != 2:
        raise GridError(f"HEAR audio is (n_sounds, n_samples) at {sample_rate} Hz; got shape {array.shape}")
    if array.shape[1] == 0:
        raise GridError("HEAR audio has zero samples")
    if not np.isfinite(array).all():
        raise GridError("HEAR audio contains NaN or infinite samples")
    return array.astype(np.float32, copy=False)


def get_timestamp_embeddings(audio, model: HearModel, layer: str | None = None):
    """HEAR ``get_timestamp_embeddings``: ``(n_sounds, n_frames, D)`` float32 tensor and ``(n_sounds, n_frames)``
    timestamps in milliseconds (of ``layer``, default: the model's first)."""
    import torch

    layers, timestamps = model.layer_embeddings(_as_batch(audio, model.sample_rate))
    embeddings = layers[layer or model.layers[0]]
    check_timestamp_output(embeddings, timestamps, len(audio))
    return torch.from_numpy(np.ascontiguousarray(embeddings)), torch.from_numpy(np.ascontiguousarray(timestamps))


def get_scene_embeddings(audio, model: HearModel, layer: str | None = None):
    """HEAR ``get_scene_embeddings``: the mean over time of the timestamp embeddings, ``(n_sounds, D)``."""
    embeddings, _ = get_timestamp_embeddings(audio, model, layer)
    return embeddings.mean(dim=1)


def check_timestamp_output(embeddings: np.ndarray, timestamps: np.ndarray, n_sounds: int) -> None:
    """Raise :class:`GridError` unless the output has the shapes and increasing millisecond timestamps HEAR asks."""
    embeddings, timestamps = np.asarray(embeddings), np.asarray(timestamps)
    if embeddings.ndim != 3 or timestamps.ndim != 2:
        raise GridError(f"embeddings must be (n_sounds, n_frames, D) and timestamps (n_sounds, n_frames); got "
                        f"{embeddings.shape} and {timestamps.shape}")
    if embeddings.shape[:2] != timestamps.shape or embeddings.shape[0] != n_sounds:
        raise GridError(f"{n_sounds} sounds, embeddings {embeddings.shape[:2]} and timestamps {timestamps.shape} "
                        f"disagree")
    if timestamps.shape[1] > 1 and not (np.diff(timestamps, axis=1) > 0).all():
        raise GridError("timestamps must increase along each sound (milliseconds, frame centres)")


class ModuleEncoder(HearModel):
    """Any installed HEAR module (by import name) as a book encoder: one layer, ``embedding``."""

    def __init__(self, module_name: str, model_file_path: str = ""):
        self.module = importlib.import_module(module_name)
        missing = [f for f in ("load_model", "get_timestamp_embeddings", "get_scene_embeddings")
                   if not hasattr(self.module, f)]
        if missing:
            raise GridError(f"{module_name} is not a HEAR module: it lacks {', '.join(missing)}")
        self.model = self.module.load_model(model_file_path) if model_file_path else self.module.load_model()
        self.name = module_name
        self.sample_rate = int(self.model.sample_rate)
        self.timestamp_embedding_size = int(self.model.timestamp_embedding_size)
        self.scene_embedding_size = int(self.model.scene_embedding_size)

    def layer_embeddings(self, audio: np.ndarray):
        import torch

        embeddings, timestamps = self.module.get_timestamp_embeddings(torch.as_tensor(audio), self.model)
        embeddings = embeddings.detach().cpu().float().numpy()
        timestamps = timestamps.detach().cpu().double().numpy()
        check_timestamp_output(embeddings, timestamps, len(audio))
        return {"embedding": embeddings}, timestamps


def load_hear_module(module_name: str, model_file_path: str = "") -> ModuleEncoder:
    """Wrap the installed HEAR module ``module_name`` (e.g. ``"hearbaseline"``, or ``"wmlib.hear"``)."""
    return ModuleEncoder(module_name, model_file_path)


def to_token_grid(embeddings: np.ndarray, timestamps: np.ndarray, n_tokens: int,
                  token_ms: float = TOKEN_MS) -> np.ndarray:
    """One sound's frames on the token grid: token k (``[k·40, (k+1)·40)`` ms) gets the mean of the frames whose
    centre falls inside it, or, when none does (frames sparser than tokens), the frame nearest its centre.

    Args:
        embeddings: ``(n_frames, D)``; timestamps: ``(n_frames,)`` frame centres in ms.
        n_tokens: the tokens of the sound.

    Returns:
        ``(n_tokens, D)`` float32.
    """
    embeddings, timestamps = np.asarray(embeddings, dtype=np.float32), np.asarray(timestamps, dtype=np.float64)
    if embeddings.ndim != 2 or timestamps.shape != (len(embeddings),):
        raise GridError(f"one sound's embeddings (n_frames, D) and timestamps (n_frames,); got {embeddings.shape} "
                        f"and {timestamps.shape}")
    if len(embeddings) == 0:
        raise GridError("the encoder returned no frames")
    span = n_tokens * token_ms
    if timestamps[0] > token_ms or timestamps[-1] < span - 2 * token_ms:
        raise GridError(f"frames cover {timestamps[0]:.0f}–{timestamps[-1]:.0f} ms but the {n_tokens} tokens span "
                        f"0–{span:.0f} ms: are the timestamps in milliseconds, and of this sound?")
    token = np.floor(timestamps / token_ms).astype(int)
    inside = (token >= 0) & (token < n_tokens)
    sums = np.zeros((n_tokens, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, token[inside], embeddings[inside])
    counts = np.bincount(token[inside], minlength=n_tokens)
    empty = counts == 0
    if empty.any():
        centres = (np.flatnonzero(empty) + 0.5) * token_ms
        nearest = np.abs(timestamps[None, :] - centres[:, None]).argmin(axis=1)
        sums[empty] = embeddings[nearest]
        counts[empty] = 1
    return (sums / counts[:, None]).astype(np.float32)
