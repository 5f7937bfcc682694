"""The world model as a HEAR module (Turian et al., 2022), so that hear-eval-kit can score it on its tasks::

    python -m heareval.embeddings.runner wmlib.hear --model <run or checkpoint directory>

``load_model`` takes a run directory or a ``checkpoints/step-*`` directory of any of the book's models (default:
the book's default model under ``$WMLIB_PROFILE``); timestamp embeddings are the model's ``feature`` (the state after
each 40 ms token; timestamps are the tokens' centres in milliseconds), scene embeddings their mean over time.
Audio is 16 kHz, ``(n_sounds, n_samples)``; sounds shorter than one token are refused with a clear error.

Checked by ``tests/test_hear.py`` with the checks of ``hearvalidator`` (which needs TensorFlow, not installed here).
"""
from __future__ import annotations

import torch

from wmlib.analysis import hear_api
from wmlib.analysis.encoders import WorldModelEncoder

SAMPLE_RATE = 16_000


class WorldModelHear(torch.nn.Module):
    """The HEAR model object: a ``torch.nn.Module`` (as hearvalidator asks) wrapping a book model."""

    def __init__(self, encoder: WorldModelEncoder, layer: str = "feature"):
        super().__init__()
        assert layer in encoder.layers, f"no layer {layer!r}; this model has {', '.join(encoder.layers)}"
        self.encoder, self.layer = encoder, layer
        self.network = encoder.model  # registered, so .to(device) and .eval() reach it
        self.sample_rate = SAMPLE_RATE
        self.timestamp_embedding_size = self.scene_embedding_size = encoder.layer_sizes[layer]


def load_model(model_file_path: str = "", layer: str = "feature") -> WorldModelHear:
    """A HEAR model of the book's world model at ``model_file_path`` (default: the default model)."""
    from wmlib.model.runs import locate_model

    _, path = locate_model(model_file_path or None)
    encoder = WorldModelEncoder(path, name=str(model_file_path or "world model"))
    return WorldModelHear(encoder, layer).eval()


def get_timestamp_embeddings(audio: torch.Tensor, model: WorldModelHear) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_sounds, n_tokens, D)`` float32 embeddings and ``(n_sounds, n_tokens)`` token centres in ms."""
    embeddings, timestamps = hear_api.get_timestamp_embeddings(audio, model.encoder, model.layer)
    return embeddings.float(), timestamps.float()


def get_scene_embeddings(audio: torch.Tensor, model: WorldModelHear) -> torch.Tensor:
    """``(n_sounds, D)``: the mean of the timestamp embeddings over time."""
    embeddings, _ = get_timestamp_embeddings(audio, model)
    return embeddings.mean(dim=1)
