"""The named models of the book: what each is, how long it trains per profile, and where its run lives.

``python -m wmlib train --model NAME`` and ``python -m wmlib book`` both read this table, so the book's chapters
and a reader's command line train exactly the same thing.  Training is resumable and idempotent: a finished run
returns at once, so the book command does not train again the second time.

The book's models (default profile, 2-core CPU budget):

- ``transformer-contrastive`` — **the default model**: causal transformer dynamics, contrastive objective.
- ``rssm-contrastive`` — the DreamerV2 recurrent state-space model with the same contrastive objective: the
  comparison of dynamics.
- ``transformer-reconstruction`` — the default model's dynamics trained by reconstructing the spectrogram: the
  comparison of objectives.

The two comparison models train for fewer steps (``COMPARISON_STEPS``) than the default model, to keep the book
build within 30 minutes on a 2-core CPU; the chapter compares them with the default model's twin on the same
schedule (below).  The book also trains the control ``masked-autoencoder`` ("the old way":
reconstruct masked tokens; :data:`CONTROL_MODELS`) for the comparison-model budget, for the probing chapters.
``rssm-reconstruction`` (classic Dreamer) is a named model too, trained on demand
(``python -m wmlib train --model NAME``).

The sim-to-real ablation (:data:`ABLATION_MODELS`, chapter "Real sound") trains the default model at the
comparison budget on fewer domains of the corpus: ``clean-generated`` (the generated audio only, as the book did
before it had real recordings) and ``randomized-generated`` (generated plus its randomized copies).  The default
model's twin on the same schedule is the third row: randomized plus real.

"Equal training" means the same steps *and* the same schedule: a checkpoint in the middle of the default model's
long schedule is not a finished model (its learning rate is still near its peak).  So the book also trains the
default model's twin on the comparison models' schedule, ``transformer-contrastive-short`` (:data:`TWIN_MODEL`,
:func:`equal_training_checkpoint`): every row of a table "at equal training" ends a schedule of the same length,
warm-up and decay (:data:`EQUAL_TRAINING`, :func:`schedule`).

The second seed (:data:`SEED_MODELS`, chapter "Representational similarity") is the default model with another
seed, trained on the default model's schedule but stopped at the comparison step (``TrainConfig.stop_at``), so that
it and the default model's checkpoint at that step differ only by the seed (initialisation and batch order).
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from wmlib.data.profiles import data_root, get_profile

from .checkpoints import MODEL_FILE, CheckpointError, CheckpointMismatchError
from .train import TrainConfig, default_run_dir, train

DEFAULT_MODEL = "transformer-contrastive"

#: name -> ``ModelConfig`` fields on top of the profile's preset.
MODELS: dict[str, dict] = {
    "transformer-contrastive": {"dynamics": "transformer", "objective": "contrastive"},
    "rssm-contrastive": {"dynamics": "rssm", "objective": "contrastive"},
    "rssm-reconstruction": {"dynamics": "rssm", "objective": "reconstruction"},
    "transformer-reconstruction": {"dynamics": "transformer", "objective": "reconstruction"},
    "masked-autoencoder": {"architecture": "masked_autoencoder"},
    "clean-generated": {"dynamics": "transformer", "objective": "contrastive"},
    "randomized-generated": {"dynamics": "transformer", "objective": "contrastive"},
    "transformer-contrastive-seed1": {"dynamics": "transformer", "objective": "contrastive"},
    "transformer-contrastive-short": {"dynamics": "transformer", "objective": "contrastive"},
}
#: name -> the corpus domains it trains on, for the models that do not train on all of them.
TRAINING_DOMAINS: dict[str, tuple[str, ...]] = {"clean-generated": ("generated",),
                                                "randomized-generated": ("generated", "randomized")}

#: The models ``python -m wmlib book`` trains, in this order.
BOOK_MODELS = ("transformer-contrastive", "rssm-contrastive", "transformer-reconstruction")
#: The controls ``python -m wmlib book`` trains after them (for the probing chapters), at the comparison budget.
CONTROL_MODELS = ("masked-autoencoder",)
#: The sim-to-real ablation ``python -m wmlib book`` trains last, at the comparison budget.
ABLATION_MODELS = ("clean-generated", "randomized-generated")
#: The default model with other seeds, stopped at the comparison step: name -> seed.
SEED_MODELS = {"transformer-contrastive-seed1": 1}
#: The default model on the comparison models' schedule: the default model's row wherever training is equal.
TWIN_MODEL = "transformer-contrastive-short"
#: Every model compared "at equal training" (chapters 3-6, the sim-to-real ablation): the same complete schedule.
EQUAL_TRAINING = ("rssm-contrastive", "transformer-reconstruction", "masked-autoencoder", *ABLATION_MODELS, TWIN_MODEL)

#: Against memorising: every window perturbed anew in the log-mel domain at every step (wmlib.data.mel_augment,
#: its defaults) and dropout 0.1 in every transformer.  Without them the default model, trained 8,000 steps
#: instead of 1,300, got better on the generated test and worse on held-out real sound; with them it rises on
#: every held-out set.  At 1,300 steps, the book's budget on a 2-core CPU, they still cost a little (the model
#: has not yet seen its corpus often enough to memorise it), so only long schedules take them: the ``large``
#: profile here, ``--augment --dropout 0.1`` on the command line (bench/data_curve.py, bench/README.md).
REGULARISATION: dict = {"train": {"augment": {}}, "model": {"dropout": 0.1}}
#: Per profile: whether its models train with :data:`REGULARISATION`.
REGULARISED = {"tiny": False, "default": False, "large": True}

#: Per profile: the model preset and the training settings shared by every model of the profile.
TRAINING: dict[str, dict] = {
    # The tests' book: seconds.
    "tiny": dict(preset="tiny", seq_len=32, batch_size=8, steps=60, lr=1e-3, warmup=10, checkpoint_every=20,
                 log_every=5),
    # The book: the default model in about 5 minutes on a 2-core CPU (measured in bench/README.md).
    "default": dict(preset="default", seq_len=64, batch_size=16, steps=1300, lr=1e-3, warmup=100),
    # GPUs: a starting point, never run here (no GPU was available).
    "large": dict(preset="large", seq_len=256, batch_size=64, steps=50_000, lr=5e-4, warmup=1000,
                  **REGULARISATION["train"]),
}

#: Per profile: the steps of the comparison models (and of the default model's equal-training checkpoint).
COMPARISON_STEPS = {"tiny": 20, "default": 250, "large": 12_800}


def run_config(name: str, profile: str | None = None, **changes) -> TrainConfig:
    """The :class:`TrainConfig` of the named model under ``profile``; ``changes`` override training fields.

    Comparison models (every book model but the default one) train ``COMPARISON_STEPS[profile]`` steps.
    """
    assert name in MODELS, f"unknown model {name!r}; the named models are {', '.join(MODELS)}"
    profile = get_profile(profile).name
    settings = dict(TRAINING[profile])
    if name in SEED_MODELS:  # the default model's schedule, stopped at the comparison step
        settings.update(seed=SEED_MODELS[name], stop_at=COMPARISON_STEPS[profile])
    elif name != DEFAULT_MODEL:
        settings["steps"] = COMPARISON_STEPS[profile]
    if name in TRAINING_DOMAINS:
        settings["domains"] = TRAINING_DOMAINS[name]
    keep = (0, COMPARISON_STEPS[profile], *[2**i * 50 for i in range(12)])  # step 0 is the random-init control
    return TrainConfig(profile=profile, name=name, model_overrides={**model_settings(profile), **MODELS[name]},
                       keep_checkpoints_at=keep, **{**settings, **changes})


def model_settings(profile: str) -> dict:
    """``ModelConfig`` fields every model of ``profile`` shares: :data:`REGULARISATION`'s where it applies."""
    return dict(REGULARISATION["model"]) if REGULARISED[get_profile(profile).name] else {}


def custom_run_config(name: str, profile: str | None = None, model_overrides: dict | None = None,
                      preset: str | None = None, **changes) -> TrainConfig:
    """A run of your own: the book's default model and training settings for ``profile``, with your changes.

    Args:
        name: the run's name (its folder under ``<data>/<profile>/runs/``); not one of :data:`MODELS`.
        profile: the corpus profile (default: ``$WMLIB_PROFILE`` or ``default``).
        model_overrides: ``ModelConfig`` fields on top of the default model's (:data:`DEFAULT_MODEL`: transformer
            dynamics, contrastive objective), e.g. ``{"objective": "both"}``.
        preset: model sizes (default: the profile's preset).
        changes: :class:`TrainConfig` fields (``steps``, ``lr``, ``seed``, ...) on top of the profile's settings.
    """
    assert name not in MODELS, f"{name!r} is a named model: use run_config({name!r}) or choose another name"
    profile = get_profile(profile).name
    settings = dict(TRAINING[profile])
    if preset is not None:
        settings["preset"] = preset
    overrides = {**model_settings(profile), **MODELS[DEFAULT_MODEL], **(model_overrides or {})}
    if overrides.get("architecture") == "masked_autoencoder":
        overrides = {**model_settings(profile), "architecture": "masked_autoencoder",
                     **{key: value for key, value in (model_overrides or {}).items() if key == "dropout"}}
    return TrainConfig(profile=profile, name=name, model_overrides=overrides, **{**settings, **changes})


def runs_root(profile: str | None = None) -> Path:
    """The folder of every run of ``profile``: ``<data>/<profile>/runs/``."""
    return data_root() / get_profile(profile).name / "runs"


def run_dir(name: str, profile: str | None = None) -> Path:
    """Where the named model's run lives: ``<data>/<profile>/runs/<name>/``."""
    return default_run_dir(run_config(name, profile))


class UnknownModelError(LookupError):
    """A model name that is neither a named model nor a run; the message lists what there is."""


def locate_model(model: str | os.PathLike | None = None, profile: str | None = None) -> tuple[str, Path]:
    """``(name, directory)`` of a trained model given by name or path (``None``: :data:`DEFAULT_MODEL`).

    ``model`` is a named model (its run under ``profile``), the name of a run of your own under ``profile``, a
    run directory or a ``checkpoints/step-*`` directory.

    Raises:
        UnknownModelError: nothing of that name or path.
        CheckpointError: the run exists by name but holds no weights yet; the message names the command to train it.
    """
    model = DEFAULT_MODEL if model is None else model
    root = runs_root(profile)
    if str(model) not in MODELS and Path(model).is_dir():
        return Path(model).resolve().name, Path(model)
    if str(model) in MODELS or (root / str(model)).is_dir():
        name, directory = str(model), root / str(model)
        if not (directory / MODEL_FILE).is_file():
            command = f"python -m wmlib train --model {name} --profile {get_profile(profile).name}"
            book = " or `make book`" if name in book_models() else ""
            raise CheckpointError(f"model {name!r} is not trained yet (no {MODEL_FILE} in {directory}): train it "
                                  f"with `{command}`{book}")
        return name, directory
    trained = sorted(path.name for path in root.glob("*") if (path / MODEL_FILE).is_file()) if root.is_dir() else []
    raise UnknownModelError(f"unknown model {str(model)!r}: give a named model ({', '.join(MODELS)}), a trained run "
                            f"of {root} ({', '.join(trained) or 'none yet'}) or a run directory")


def book_models() -> tuple[str, ...]:
    """Every model the book trains, in order: :data:`BOOK_MODELS`, :data:`CONTROL_MODELS`, :data:`ABLATION_MODELS`,
    :data:`SEED_MODELS` and :data:`TWIN_MODEL`."""
    return BOOK_MODELS + CONTROL_MODELS + ABLATION_MODELS + tuple(SEED_MODELS) + (TWIN_MODEL,)


def train_book_models(profile: str | None = None, progress: bool = True) -> dict[str, Path]:
    """Train (or finish, or just find) every model of :func:`book_models`; name -> run directory.

    A run directory left by another configuration (the code's settings changed since) is renamed to
    ``<name>.replaced-<time>``, never deleted, and the model is trained afresh.
    """
    found = {}
    for name in book_models():
        config = run_config(name, profile)
        try:
            found[name] = train(config, progress=progress)
        except CheckpointMismatchError as error:
            directory = default_run_dir(config)
            kept = directory.with_name(f"{name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            warnings.warn(f"{error}\nThe book's settings for {name} changed: the old run is kept as {kept} and the "
                          "model is trained again", stacklevel=2)
            directory.rename(kept)
            found[name] = train(config, progress=progress)
    return found


def equal_training_checkpoint(profile: str | None = None) -> Path:
    """The default model at equal training: its twin, trained on the comparison models' complete schedule
    (:data:`TWIN_MODEL`), not a checkpoint in the middle of its own longer one."""
    return run_dir(TWIN_MODEL, profile)


def schedule(name: str, profile: str | None = None) -> str:
    """How a named model was trained, in words: steps, batch, warm-up, decay (for the tables' captions)."""
    config = run_config(name, profile)
    text = (f"{config.steps:,} steps of {config.batch_size} windows, {config.warmup}-step warm-up to lr "
            f"{config.lr:g}, then {config.schedule} decay")
    return text + (f", stopped at step {config.stop_at:,}" if config.stop_at else "")


def training_summary(profile: str | None = None, names=None):
    """One row per named model (default: the book's): what it is and what its training cost on this machine (from
    its run files).

    Columns: ``dynamics, objective, parameters, steps, tokens seen, minutes, tokens/s`` (the median over the
    logged intervals, robust to a moment of contention) and the final ``readout`` MSE.
    """
    import pandas as pd

    from .checkpoints import load_model, read_metrics
    from .models import count_parameters

    rows = []
    for name in names or BOOK_MODELS:
        directory = run_dir(name, profile)
        config = run_config(name, profile)
        model, model_config = load_model(directory)
        metrics = read_metrics(directory)
        rows.append({"model": name, "dynamics": model_config.dynamics, "objective": model_config.objective,
                     "parameters": count_parameters(model), "steps": int(metrics["step"].iloc[-1]),
                     "tokens seen": int(metrics["step"].iloc[-1]) * config.batch_size * config.seq_len,
                     "minutes": metrics["elapsed_seconds"].iloc[-1] / 60,
                     "tokens/s": metrics["tokens_per_second"].median(),
                     "readout MSE": metrics["readout"].iloc[-1]})
    return pd.DataFrame(rows).set_index("model")
