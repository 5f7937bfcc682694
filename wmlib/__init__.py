"""wmlib: a world model for audio, and the tools to ask what it learned (the library of an executable book).

Data flows one way, and the package is laid out along it::

    wmlib.data      audio in, the embedded corpus (speech, music, noise with exact labels), real corpora,
                    log-mel tokens with per-token labels
    wmlib.model     the world model (RSSM or transformer dynamics), training, checkpoints, the book's named runs,
                    evaluation, and encoding audio of your own into latents
    wmlib.analysis  what the model learned: probes (targets, representations, the probing study), real sound,
                    sparse features (a sparse autoencoder's dictionary, labelled and tested), dreams and their
                    coherence, applications, interventions, other encoders (HEAR API) and representational
                    similarity (RSA, CKA)
    wmlib.book      plots and the book build

``wmlib.hear`` is the world model as a HEAR module (for hear-eval-kit); ``wmlib.cli`` the command line.

A stage imports only earlier stages.  The names chapters use are importable from ``wmlib`` itself, e.g.
``from wmlib import load_tokens, load_model``; importing ``wmlib`` loads none of them (nor torch) until used.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    # data
    "SAMPLE_RATE": "wmlib.data.audio", "AudioError": "wmlib.data.audio", "load_audio": "wmlib.data.audio",
    "PROFILES": "wmlib.data.profiles", "get_profile": "wmlib.data.profiles", "data_root": "wmlib.data.profiles",
    "Corpus": "wmlib.data.corpus", "build_corpus": "wmlib.data.corpus", "build_info": "wmlib.data.corpus",
    "load_real_corpus": "wmlib.data.loaders",
    "FeatureConfig": "wmlib.data.features", "TokenSet": "wmlib.data.features", "load_tokens": "wmlib.data.features",
    "tokenize": "wmlib.data.features", "log_mel": "wmlib.data.features", "tokens_to_audio": "wmlib.data.features",
    # model
    "ModelConfig": "wmlib.model.models", "build_model": "wmlib.model.models",
    "TrainConfig": "wmlib.model.train", "train": "wmlib.model.train",
    "load_model": "wmlib.model.checkpoints", "list_checkpoints": "wmlib.model.checkpoints",
    "read_metrics": "wmlib.model.checkpoints",
    "MODELS": "wmlib.model.runs", "BOOK_MODELS": "wmlib.model.runs", "DEFAULT_MODEL": "wmlib.model.runs",
    "run_config": "wmlib.model.runs", "run_dir": "wmlib.model.runs", "train_book_models": "wmlib.model.runs",
    "evaluate_runs": "wmlib.model.evaluate",
    "encode": "wmlib.model.encode", "Encoding": "wmlib.model.encode",
    # analysis
    "register_target": "wmlib.analysis.targets", "TARGETS": "wmlib.analysis.targets",
    "probe_target": "wmlib.analysis.probes", "model_representations": "wmlib.analysis.representations",
    "ProbeStudy": "wmlib.analysis.probing",
    "sparse_features": "wmlib.analysis.sparse.study",
    "dream": "wmlib.analysis.dreams", "dream_audio": "wmlib.analysis.dreams", "CandidateBank": "wmlib.analysis.dreams",
    # book
    "build_book": "wmlib.book.build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # once imported, a plain attribute
        return value
    raise AttributeError(f"module 'wmlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
