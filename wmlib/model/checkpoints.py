"""Checkpoints and run files: reading and writing them, safely, without pickle.

A run directory (written by :func:`wmlib.model.train.train`)::

    <data_root>/<profile>/runs/<name>/
        config.json                  model config + train config + data fingerprint (what makes this run this run)
        model.safetensors            latest weights (what analyses load, via load_model)
        state.safetensors            latest weights + AdamW moments + RNG state + step (what resume loads)
        metrics.jsonl                one JSON line per log step
        checkpoints/step-000100/     permanent weights at the steps of ``keep_checkpoints_at`` (+ the final step)
            model.safetensors  config.json

Everything on disk is safetensors or JSON: nothing is ever unpickled.  Every safetensors file carries a SHA-256
of its tensors in its header, so a damaged or edited file is refused rather than loaded.  Every file is written to
a temporary file beside its target and renamed onto it (:func:`wmlib.data.files.atomic_write`), so Ctrl-C or a
crash at any moment leaves the last complete checkpoint intact.

Used by training (:mod:`wmlib.model.train`) and, through :func:`load_model`, :func:`list_checkpoints` and
:func:`read_metrics`, by every chapter that studies a trained model.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn as nn

from wmlib.data.files import atomic_write

RUN_FORMAT = "wmlib-run-1"


MODEL_FORMAT = "wmlib-model-1"


STATE_FORMAT = "wmlib-train-state-1"


CONFIG_FILE, MODEL_FILE = "config.json", "model.safetensors"
STATE_FILE, METRICS_FILE = "state.safetensors", "metrics.jsonl"


LOCK_FILE = "train.lock"  # exists only while a process trains the run


# TrainConfig fields that may change when a run is resumed: how long it runs and how it is recorded, not what it
# computes.  (With the cosine schedule, a changed ``steps`` re-plans the decay from the resume point on.)
RESUMABLE_FIELDS = ("name", "steps", "stop_at", "checkpoint_every", "keep_checkpoints_at", "log_every", "compile")


class CheckpointError(ValueError):
    """A checkpoint or run directory that cannot be used as asked; the message says why and what to do."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint or run directory made with another configuration (differing fields or weight keys/shapes)."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint file that is damaged, truncated or tampered with."""


# ----------------------------------------------------------------------------------------------------------------
# Safetensors files


def json_normal(value):
    """``value`` as JSON would give it back (tuples become lists), so configs compare equal across a round trip."""
    return json.loads(json.dumps(value))


def _content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes: catches a damaged or edited file that still parses."""
    hasher = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        hasher.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    # own, contiguous CPU copies: safetensors refuses tensors that share memory
    tensors = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
    metadata = {**metadata, "content_sha256": _content_hash(tensors)}
    with atomic_write(path, mode=None) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _read(path: str | os.PathLike, tensors: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Metadata, and the tensors if asked, of a safetensors file; the errors of :func:`read_safetensors`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; train first (`python -m wmlib train ...`)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            return {key: handle.get_tensor(key) for key in handle.keys()} if tensors else {}, metadata
    except Exception as error:  # safetensors raises its own SafetensorError (and others) on a bad header
        raise CheckpointCorruptError(
            f"{path}: not a readable safetensors file ({type(error).__name__}: {error}). It is damaged, truncated or "
            "not a checkpoint: delete it and train again (or copy it again from its source)") from error


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, checked against the content hash written with it.

    Raises:
        CheckpointError: the file does not exist.
        CheckpointCorruptError: the header does not parse, the file is truncated, or the content hash differs.
    """
    tensors, metadata = _read(path, tensors=True)
    expected = metadata.get("content_sha256")
    if expected is not None and _content_hash(tensors) != expected:
        raise CheckpointCorruptError(
            f"{path}: its tensors do not match the content hash stored in its header: the file was altered after it "
            "was written. Delete it and train again (or copy it again from its source)")
    return tensors, metadata


def read_header(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file (format, step, model config), from its header alone: no tensor is read
    and no hash computed (:func:`read_safetensors` checks those).

    Raises:
        CheckpointError: the file does not exist.
        CheckpointCorruptError: the header does not parse.
    """
    return _read(path, tensors=False)[1]


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps; save the plain model's names
    return dict(model.state_dict())


def save_weights(path: str | os.PathLike, model: nn.Module, model_config, step: int) -> None:
    """Write ``model``'s weights to ``path`` (safetensors, atomically), with its config and step in the header."""
    metadata = {"format": MODEL_FORMAT, "step": str(step), "model_config": json.dumps(model_config.to_dict())}
    write_safetensors(Path(path), model_state(model), metadata)


def check_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    expected = model_state(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    reshaped = [f"{key}: file {tuple(tensors[key].shape)} vs model {tuple(expected[key].shape)}"
                for key in sorted(set(expected) & set(tensors)) if tensors[key].shape != expected[key].shape]
    if missing or unexpected or reshaped:
        parts = []
        found = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", reshaped))
        for title, items in found:
            if items:
                parts.append(f"{title} ({len(items)}): {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}")
        raise CheckpointMismatchError(
            f"{where} does not fit this model: " + "; ".join(parts) +
            ". It was written by a model of another configuration: load it with the config.json saved beside it")


def load_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Load a weights file into ``model`` with strict key and shape checks; returns the file's metadata.

    Raises:
        CheckpointMismatchError: naming the missing / unexpected keys and the shape mismatches.
        CheckpointCorruptError: a damaged or altered file.
    """
    tensors, metadata = read_safetensors(path)
    check_state_dict(model, tensors, str(path))
    target = getattr(model, "_orig_mod", model)
    target.load_state_dict(tensors, strict=True)
    return metadata


def config_differences(saved: dict, requested: dict, prefix: str = "") -> list[str]:
    """``"field: saved vs requested"`` for every differing leaf of two nested dicts."""
    out = []
    for key in sorted(set(saved) | set(requested)):
        a, b = saved.get(key, "<absent>"), requested.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} (saved) vs {b!r} (requested)")
    return out


def model_config_from_dict(values: dict):
    from .models import ModelConfig

    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CheckpointMismatchError(
            f"the saved model config has fields this version of wmlib does not know: {unknown}; it was written by "
            "another version of wmlib: use that version, or train again")
    return ModelConfig(**values)


def resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights file, config.json)`` of a run dir, a ``checkpoints/step-*`` dir, or a weights file."""
    path = Path(path)
    weights = path / MODEL_FILE if path.is_dir() else path
    config = weights.parent / CONFIG_FILE
    if not config.is_file() and weights.parent.parent.name == "checkpoints":  # older step dirs without a copy
        config = weights.parent.parent.parent / CONFIG_FILE
    if not weights.is_file():
        raise CheckpointError(f"{path}: no {MODEL_FILE} there; train first (`python -m wmlib train ...`) "
                              "or pass a run directory, a checkpoints/step-* directory or a .safetensors file")
    if not config.is_file():
        raise CheckpointError(f"{weights}: no {CONFIG_FILE} beside it; without it the model cannot be rebuilt")
    return weights, config


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The trained model of a run directory (latest weights) or of a ``checkpoints/step-000100`` directory.

    Reads ``config.json``, builds the model, and loads the weights with strict key and shape checks.  Never
    unpickles anything.  The model is returned in eval mode.

    Args:
        path: a run directory, a checkpoint directory, or a ``.safetensors`` weights file with config.json beside it.
        device: where to put the model.

    Returns:
        ``(model, model_config)``.

    Raises:
        CheckpointMismatchError: the weights were written by another model config than config.json describes
            (naming the differing fields, or the missing / unexpected keys and shapes).
        CheckpointCorruptError: a damaged or altered file.
    """
    from .models import build_model

    weights, config_path = resolve_checkpoint(path)
    try:
        saved = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointCorruptError(f"{config_path}: not valid JSON ({error}); the run directory is damaged") \
            from error
    model_config = model_config_from_dict(saved["model"])
    tensors, metadata = read_safetensors(weights)
    if "model_config" in metadata:
        differences = config_differences(json.loads(metadata["model_config"]), json_normal(model_config.to_dict()))
        if differences:
            raise CheckpointMismatchError(
                f"{weights} was written by a model with another config than {config_path} describes: "
                + "; ".join(d.replace("(saved)", "(weights)").replace("(requested)", "(config.json)")
                            for d in differences)
                + ". Keep each weights file beside the config.json it was saved with")
    model = build_model(model_config)
    check_state_dict(model, tensors, str(weights))
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), model_config


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, directory)`` of a run's permanent checkpoints, by step (for analyses along training)."""
    root = Path(run_dir) / "checkpoints"
    found = []
    for folder in root.glob("step-*") if root.is_dir() else []:
        if (folder / MODEL_FILE).is_file() and folder.name[5:].isdigit():
            found.append((int(folder.name[5:]), folder))
    return sorted(found)


def read_metrics(run_dir: str | os.PathLike):
    """``metrics.jsonl`` of a run as a DataFrame (one row per log step); a half-written last line is skipped."""
    import pandas as pd

    path = Path(run_dir) / METRICS_FILE
    return pd.DataFrame(read_metric_lines(path))


def read_metric_lines(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Training state (weights + optimizer + RNG + step) in one safetensors file


def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, elapsed: float,
                device: torch.device) -> None:
    tensors = {f"model.{key}": value for key, value in model_state(model).items()}
    optimizer_state = optimizer.state_dict()
    scalars = {}  # non-tensor per-parameter state, if any (AdamW keeps only tensors)
    for index, state in optimizer_state["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    tensors["rng.torch_cpu"] = torch.get_rng_state()  # uint8
    if device.type == "cuda":
        tensors["rng.torch_cuda"] = torch.cuda.get_rng_state(device)
    metadata = {"format": STATE_FORMAT, "step": str(step), "elapsed_seconds": repr(elapsed),
                "param_groups": json.dumps(optimizer_state["param_groups"]), "optimizer_scalars": json.dumps(scalars)}
    write_safetensors(path, tensors, metadata)


def load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               device: torch.device) -> tuple[int, float]:
    """Restore weights, optimizer and RNG from ``path``; returns ``(step, elapsed_seconds)``."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != STATE_FORMAT:
        raise CheckpointMismatchError(f"{path}: format {metadata.get('format')!r}, expected {STATE_FORMAT!r}")
    weights = {key[len("model."):]: value for key, value in tensors.items() if key.startswith("model.")}
    check_state_dict(model, weights, str(path))
    model.load_state_dict(weights, strict=True)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in json.loads(metadata["optimizer_scalars"]).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = json.loads(metadata["param_groups"])
    for saved, current in zip(groups, optimizer.param_groups):  # implementation switches follow this device
        for key in ("fused", "foreach", "capturable"):
            if key in current:
                saved[key] = current[key]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch_cpu"])
    if device.type == "cuda" and "rng.torch_cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.torch_cuda"], device)
    return int(metadata["step"]), float(metadata["elapsed_seconds"])


# ----------------------------------------------------------------------------------------------------------------
# Run directories


def check_run_dir(run_dir: Path, record: dict) -> None:
    """Raise CheckpointMismatchError if ``run_dir`` holds a run of another configuration."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        if (run_dir / STATE_FILE).exists() or (run_dir / MODEL_FILE).exists():
            raise CheckpointMismatchError(
                f"{run_dir} holds checkpoints but no {CONFIG_FILE}: it is not a complete wmlib run; "
                "choose another name or delete the directory")
        return
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointCorruptError(f"{path}: not valid JSON ({error}); delete {run_dir} and train again") from error
    requested = {key: record[key] for key in ("format", "model", "train", "data")}
    saved = {key: saved.get(key, {}) for key in requested}
    for part in (saved, requested):
        part["train"] = {k: v for k, v in part["train"].items() if k not in RESUMABLE_FIELDS}
    differences = config_differences(saved, requested)
    if differences:
        raise CheckpointMismatchError(
            f"{run_dir} holds a run with another configuration, so it cannot be continued with this one:\n  "
            + "\n  ".join(differences)
            + f"\nTo train this configuration, give it a new name (TrainConfig.name / --model), or delete {run_dir}; "
            "to continue that run, use its configuration (config.json there).")


def save_permanent(run_dir: Path, model: nn.Module, model_config, step: int) -> None:
    folder = run_dir / "checkpoints" / f"step-{step:06d}"
    save_weights(folder / MODEL_FILE, model, model_config, step)
    with atomic_write(folder / CONFIG_FILE, "w") as handle:
        json.dump(json.loads((run_dir / CONFIG_FILE).read_text()), handle, indent=2)
