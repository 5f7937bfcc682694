"""Training the world model: windows of tokens, the loop, checkpoints and exact resume.

One function, :func:`train`, turns a :class:`TrainConfig` into a run directory::

    <data_root>/<profile>/runs/<name>/
        config.json                  model config + train config + data fingerprint (what makes this run this run)
        model.safetensors            latest weights (what analyses load, via load_model)
        state.safetensors            latest weights + AdamW moments + RNG state + step (what resume loads)
        metrics.jsonl                one JSON line per log step
        checkpoints/step-000100/     permanent weights at the steps of ``keep_checkpoints_at`` (+ the final step)
            model.safetensors  config.json

Everything on disk is safetensors or JSON: nothing is ever unpickled.  Every file is written to a temporary file
beside its target and renamed onto it (:func:`wmlib.audio.atomic_write`), so Ctrl-C or a crash at any moment leaves
the last complete checkpoint intact; running :func:`train` again with the same config continues from it.

Reproducibility.  The batch of step ``s`` is drawn from a generator seeded by ``(seed, s)`` and the model's own
randomness (RSSM sampling) from ``(seed, s, rank)``, so a run interrupted and resumed ends with exactly the weights
of an uninterrupted one, and ``torchrun --nproc_per_node 2`` sees the same global batches as one process (each rank
takes its slice).

Used by the training chapter (and, through :func:`load_model` and :func:`list_checkpoints`, by every analysis
chapter); ``python -m wmlib train`` runs it from a shell.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from .audio import atomic_write
from .profiles import data_root, get_profile

RUN_FORMAT = "wmlib-run-1"
MODEL_FORMAT = "wmlib-model-1"
STATE_FORMAT = "wmlib-train-state-1"
CONFIG_FILE, MODEL_FILE, STATE_FILE, METRICS_FILE = "config.json", "model.safetensors", "state.safetensors", "metrics.jsonl"
LOCK_FILE = "train.lock"  # exists only while a process trains the run

# TrainConfig fields that may change when a run is resumed: how long it runs and how it is recorded, not what it
# computes.  (With the cosine schedule, a changed ``steps`` re-plans the decay from the resume point on.)
RESUMABLE_FIELDS = ("name", "steps", "checkpoint_every", "keep_checkpoints_at", "log_every", "compile")


class CheckpointError(ValueError):
    """A checkpoint or run directory that cannot be used as asked; the message says why and what to do."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint or run directory made with another configuration (differing fields or weight keys/shapes)."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint file that is damaged, truncated or tampered with."""


def geometric_steps(last: int = 102_400, first: int = 50) -> tuple[int, ...]:
    """``0, first, 2*first, 4*first, ...`` up to ``last``: checkpoints dense early, when representations change fast."""
    steps, step = [0], first
    while step <= last:
        steps.append(step)
        step *= 2
    return tuple(steps)


# ----------------------------------------------------------------------------------------------------------------
# Config


@dataclass
class TrainConfig:
    """Everything that determines a training run (with the model config it names).

    Args:
        profile: corpus profile whose tokens are trained on (``tiny`` / ``default`` / ``large``).
        name: the run's name; its directory is ``data_root()/<profile>/runs/<name>/``.
        preset: model size preset (a key of ``wmlib.models.SIZES``).
        model_overrides: ``ModelConfig`` fields set on top of the preset, e.g. ``{"dynamics": "transformer"}``.
        split: which split's utterances are trained on.
        seq_len: tokens per training window (64 = 2.56 s); utterances shorter than this are skipped.
        batch_size: windows per step, summed over all processes (the *global* batch).
        steps: optimizer steps in all.
        lr, weight_decay, grad_clip: AdamW settings; ``grad_clip`` is the max global gradient norm (0: off).
        warmup: steps of linear warm-up from 0 to ``lr``.
        schedule: ``"cosine"`` (decay to ``min_lr_fraction * lr`` at ``steps``) or ``"constant"``.
        min_lr_fraction: the end of the cosine decay, as a fraction of ``lr``.
        seed: initialisation, batch order and the model's sampling all derive from it.
        checkpoint_every: steps between rewrites of the latest checkpoint (resume point).
        keep_checkpoints_at: steps whose weights are kept for good (step 0 = initialisation); the final step is
            always kept too.
        log_every: steps between lines of ``metrics.jsonl`` (each the mean over those steps).
        compile: ``torch.compile`` the loss.  It fuses the element-wise work between the matmuls, at a one-off
            cost of compiling (on the 2-core CPU here, about a minute, cold); the RSSM's time loop stays eager.
            Random numbers are drawn as in eager mode, so a seed gives the same run either way up to rounding.
        amp: ``"auto"`` (bf16 autocast on CUDA, none on the CPU), ``"bf16"`` or ``"off"``.
    """

    profile: str = "default"
    name: str = "default"
    preset: str = "default"
    model_overrides: dict = field(default_factory=dict)
    split: str = "train"
    seq_len: int = 64
    batch_size: int = 16
    steps: int = 1000
    lr: float = 3e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup: int = 50
    schedule: str = "cosine"
    min_lr_fraction: float = 0.1
    seed: int = 0
    checkpoint_every: int = 100
    keep_checkpoints_at: tuple[int, ...] = geometric_steps()
    log_every: int = 10
    compile: bool = False
    amp: str = "auto"

    def __post_init__(self):
        assert self.schedule in ("cosine", "constant"), f"schedule must be 'cosine' or 'constant', got {self.schedule!r}"
        assert self.amp in ("auto", "bf16", "off"), f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}"
        assert self.seq_len >= 2, f"seq_len must be at least 2 tokens, got {self.seq_len}"
        assert self.batch_size >= 1 and self.steps >= 0, "batch_size must be >= 1 and steps >= 0"
        assert self.checkpoint_every >= 1 and self.log_every >= 1, "checkpoint_every and log_every must be >= 1"
        assert self.name and "/" not in self.name, f"name must be a non-empty folder name, got {self.name!r}"
        self.keep_checkpoints_at = tuple(sorted({int(s) for s in self.keep_checkpoints_at}))

    def model_config(self):
        """The ``ModelConfig`` this run trains: ``ModelConfig.preset(preset, **model_overrides)``."""
        from .models import ModelConfig

        return ModelConfig.preset(self.preset, **self.model_overrides)

    def lr_at(self, step: int) -> float:
        """Learning rate of the update that takes the weights from ``step`` to ``step + 1``."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.schedule == "constant" or self.steps <= self.warmup:
            return self.lr
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        low = self.min_lr_fraction * self.lr
        return low + 0.5 * (self.lr - low) * (1.0 + math.cos(math.pi * progress))

    def to_dict(self) -> dict:
        return _json_normal(asdict(self))


def default_run_dir(config: TrainConfig) -> Path:
    """``data_root()/<profile>/runs/<name>/``."""
    return data_root() / get_profile(config.profile).name / "runs" / config.name


# ----------------------------------------------------------------------------------------------------------------
# Data


class TokenWindows:
    """Every window of ``seq_len`` consecutive tokens inside one utterance of a split, sampled by step.

    Windows never cross utterances; utterances shorter than ``seq_len`` tokens yield none and are skipped (not
    padded: padding would teach the model a silence that is not in the audio).  :attr:`skipped_utterances` lists
    them.  Long utterances contribute more windows, so every token is about equally likely to be seen.

    Args:
        tokens: a :class:`wmlib.features.TokenSet`.
        seq_len: tokens per window.
        split: the ``labels["split"]`` value to keep (``None``: every token).
    """

    def __init__(self, tokens, seq_len: int, split: str | None = "train"):
        labels = tokens.labels
        keep = np.ones(len(labels), bool) if split is None else (labels["split"].to_numpy() == split)
        utt = labels["utt_id"].to_numpy()[keep].astype(str)
        token = labels["token"].to_numpy()[keep].astype(np.int64)
        order = np.lexsort((token, utt))  # by utterance, then time
        utt, token = utt[order], token[order]
        mel = np.ascontiguousarray(tokens.mel[keep][order], dtype=np.float32)  # (N, M, F)
        self.seq_len, self.split = seq_len, split
        self.utt_id, self.token = utt, token  # (N,) of the rows of :attr:`mel`, by utterance then time
        if len(utt) >= seq_len:
            # a window starting at i is valid if it ends in the same utterance, seq_len - 1 tokens later (no gaps)
            same = utt[: len(utt) - seq_len + 1] == utt[seq_len - 1:]
            contiguous = token[seq_len - 1:] - token[: len(token) - seq_len + 1] == seq_len - 1
            starts = np.flatnonzero(same & contiguous)
        else:
            starts = np.zeros(0, np.int64)
        all_utterances = np.unique(utt)
        used = np.unique(utt[starts])
        self.utterances = len(used)
        self.skipped_utterances = sorted(set(all_utterances) - set(used))
        if len(starts) == 0:
            raise ValueError(
                f"no window of {seq_len} consecutive tokens in split {split!r} ({len(utt)} tokens, "
                f"{len(all_utterances)} utterances): use a shorter seq_len or a bigger profile")
        hasher = hashlib.sha256()
        for array in (mel, token, np.char.encode(utt, "utf-8"), np.int64(seq_len)):
            hasher.update(np.ascontiguousarray(array).tobytes())
        self.fingerprint = hasher.hexdigest()[:16]
        self.mel = torch.from_numpy(mel)  # (N, M, F)
        self.starts = torch.from_numpy(starts.astype(np.int64))  # (W,)

    def __len__(self) -> int:
        return len(self.starts)

    def to(self, device) -> "TokenWindows":
        """Move the tokens to ``device`` (the whole split: ~100 MB for the default profile), once."""
        self.mel, self.starts = self.mel.to(device), self.starts.to(device)
        return self

    def windows(self, indices: torch.Tensor) -> torch.Tensor:
        """Windows number ``indices`` ``(B,)`` -> tokens ``(B, seq_len, M, F)`` in dB."""
        index = self.starts[indices.to(self.starts.device)][:, None] + torch.arange(
            self.seq_len, device=self.starts.device)  # (B, T)
        return self.mel[index]  # (B, T, M, F)

    def batch_indices(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """Window numbers of step ``step``: the global batch is drawn from ``(seed, step)``; rank r takes slice r."""
        assert batch_size % world_size == 0, (
            f"batch_size {batch_size} must be divisible by the number of processes {world_size}")
        rng = np.random.default_rng([seed, step, 0xDA7A])
        indices = rng.integers(0, len(self), size=batch_size)
        per_rank = batch_size // world_size
        return torch.from_numpy(indices[rank * per_rank: (rank + 1) * per_rank])

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """This rank's share of step ``step``'s batch: ``(batch_size / world_size, seq_len, M, F)`` in dB."""
        return self.windows(self.batch_indices(step, batch_size, seed, rank, world_size))

    def summary(self) -> dict:
        return {"split": self.split, "seq_len": self.seq_len, "windows": len(self), "tokens": len(self.mel),
                "utterances": self.utterances, "skipped_utterances": len(self.skipped_utterances),
                "fingerprint": self.fingerprint}


# ----------------------------------------------------------------------------------------------------------------
# Safetensors files (no pickle anywhere)


def _json_normal(value):
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


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    # own, contiguous CPU copies: safetensors refuses tensors that share memory
    tensors = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
    metadata = {**metadata, "content_sha256": _content_hash(tensors)}
    with atomic_write(path, mode=None) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, checked against the content hash written with it.

    Raises:
        CheckpointError: the file does not exist.
        CheckpointCorruptError: the header does not parse, the file is truncated, or the content hash differs.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; train first (`python -m wmlib train ...`)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own SafetensorError (and others) on a bad header
        raise CheckpointCorruptError(
            f"{path}: not a readable safetensors file ({type(error).__name__}: {error}). It is damaged, truncated or "
            "not a checkpoint: delete it and train again (or copy it again from its source)") from error
    expected = metadata.get("content_sha256")
    if expected is not None and _content_hash(tensors) != expected:
        raise CheckpointCorruptError(
            f"{path}: its tensors do not match the content hash stored in its header: the file was altered after it "
            "was written. Delete it and train again (or copy it again from its source)")
    return tensors, metadata


def _model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps; save the plain model's names
    return dict(model.state_dict())


def save_weights(path: str | os.PathLike, model: nn.Module, model_config, step: int) -> None:
    """Write ``model``'s weights to ``path`` (safetensors, atomically), with its config and step in the header."""
    metadata = {"format": MODEL_FORMAT, "step": str(step), "model_config": json.dumps(model_config.to_dict())}
    _write_safetensors(Path(path), _model_state(model), metadata)


def _check_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    expected = _model_state(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    reshaped = [f"{key}: file {tuple(tensors[key].shape)} vs model {tuple(expected[key].shape)}"
                for key in sorted(set(expected) & set(tensors)) if tensors[key].shape != expected[key].shape]
    if missing or unexpected or reshaped:
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", reshaped)):
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
    _check_state_dict(model, tensors, str(path))
    target = getattr(model, "_orig_mod", model)
    target.load_state_dict(tensors, strict=True)
    return metadata


def _config_differences(saved: dict, requested: dict, prefix: str = "") -> list[str]:
    """``"field: saved vs requested"`` for every differing leaf of two nested dicts."""
    out = []
    for key in sorted(set(saved) | set(requested)):
        a, b = saved.get(key, "<absent>"), requested.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} (saved) vs {b!r} (requested)")
    return out


def _model_config_from_dict(values: dict):
    from .models import ModelConfig

    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CheckpointMismatchError(
            f"the saved model config has fields this version of wmlib does not know: {unknown}; it was written by "
            "another version of wmlib: use that version, or train again")
    return ModelConfig(**values)


def _resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
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

    weights, config_path = _resolve_checkpoint(path)
    try:
        saved = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointCorruptError(f"{config_path}: not valid JSON ({error}); the run directory is damaged") from error
    model_config = _model_config_from_dict(saved["model"])
    tensors, metadata = read_safetensors(weights)
    if "model_config" in metadata:
        differences = _config_differences(json.loads(metadata["model_config"]), _json_normal(model_config.to_dict()))
        if differences:
            raise CheckpointMismatchError(
                f"{weights} was written by a model with another config than {config_path} describes: "
                + "; ".join(d.replace("(saved)", "(weights)").replace("(requested)", "(config.json)")
                            for d in differences)
                + ". Keep each weights file beside the config.json it was saved with")
    model = build_model(model_config)
    _check_state_dict(model, tensors, str(weights))
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
    return pd.DataFrame(_read_metric_lines(path))


def _read_metric_lines(path: Path) -> list[dict]:
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


def _save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, elapsed: float,
                device: torch.device) -> None:
    tensors = {f"model.{key}": value for key, value in _model_state(model).items()}
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
    _write_safetensors(path, tensors, metadata)


def _load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> tuple[int, float]:
    """Restore weights, optimizer and RNG from ``path``; returns ``(step, elapsed_seconds)``."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != STATE_FORMAT:
        raise CheckpointMismatchError(f"{path}: format {metadata.get('format')!r}, expected {STATE_FORMAT!r}")
    weights = {key[len("model."):]: value for key, value in tensors.items() if key.startswith("model.")}
    _check_state_dict(model, weights, str(path))
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
# The loop


class _LossModule(nn.Module):
    """``forward`` = ``model.loss``: DistributedDataParallel and torch.compile wrap ``forward`` only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor):
        return self.model.loss(tokens)


def _step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of one step on one rank: the model's sampling noise is a function of (seed, step, rank)."""
    return int(np.random.SeedSequence([seed, step, rank, 0x5EED]).generate_state(1, np.uint64)[0])


def _distributed() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from torchrun's environment; ``(0, 0, 1)`` when not launched by it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 0, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"])), world_size


def _check_run_dir(run_dir: Path, record: dict) -> None:
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
    differences = _config_differences(saved, requested)
    if differences:
        raise CheckpointMismatchError(
            f"{run_dir} holds a run with another configuration, so it cannot be continued with this one:\n  "
            + "\n  ".join(differences)
            + f"\nTo train this configuration, give it a new name (TrainConfig.name / --model), or delete {run_dir}; "
            "to continue that run, use its configuration (config.json there).")


def train(config: TrainConfig, run_dir: str | os.PathLike | None = None, progress: bool = True, tokens=None) -> Path:
    """Train (or continue training) the model of ``config``; returns the run directory.

    If the run directory already holds a checkpoint of the same configuration, training continues from it (and
    returns at once if it has already reached ``config.steps``); a directory of another configuration raises
    :class:`CheckpointMismatchError`.  Launched by ``torchrun``, each process trains its slice of every batch
    under DistributedDataParallel and only rank 0 writes files.

    Args:
        config: what to train.
        run_dir: where; default :func:`default_run_dir` (``data_root()/<profile>/runs/<name>/``).
        progress: show a progress bar (rank 0 only).
        tokens: a ``TokenSet`` to train on instead of the profile's (e.g. a real corpus from ``wmlib.loaders``,
            or a test fixture); its fingerprint is recorded, so a resumed run must use the same tokens.

    Returns:
        The run directory.
    """
    from tqdm import tqdm

    from .models import build_model, prepare_for_compile

    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    rank, local_rank, world_size = _distributed()
    created_group = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        created_group = True
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    use_amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    is_writer = rank == 0
    bar = lock = None
    try:
        if is_writer:
            lock = _lock_run_dir(run_dir)
        if tokens is None:
            from .features import load_tokens

            tokens = load_tokens(config.profile, progress=progress and is_writer)
        windows = TokenWindows(tokens, config.seq_len, config.split)
        model_config = config.model_config()
        assert world_size == 1 or config.batch_size % world_size == 0, (
            f"batch_size {config.batch_size} must be divisible by the {world_size} processes")
        record = {"format": RUN_FORMAT, "model": _json_normal(model_config.to_dict()), "train": config.to_dict(),
                  "data": {"fingerprint": windows.fingerprint}, "data_summary": _json_normal(windows.summary())}
        _check_run_dir(run_dir, record)

        torch.manual_seed(config.seed)  # initialisation
        model = build_model(model_config).to(device)
        model.train()
        decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]  # matrices decay; gains, biases don't
        no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=(0.9, 0.95), fused=True)
        step, elapsed_before = 0, 0.0
        if (run_dir / STATE_FILE).is_file():
            step, elapsed_before = _load_state(run_dir / STATE_FILE, model, optimizer, device)
        if world_size > 1:
            dist.barrier()  # every rank has read the checkpoint before rank 0 writes anything
        if is_writer:
            _start_run_files(run_dir, record, model, model_config, optimizer, step, elapsed_before, device, config)
        if step >= config.steps:
            return run_dir

        step_module: nn.Module = _LossModule(model)
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            step_module = DistributedDataParallel(step_module, device_ids=[local_rank] if device.type == "cuda" else None)
        if config.compile:
            prepare_for_compile()  # the RSSM's loop eager; eager's random numbers (the RSSM's and the MAE's sampling)
            step_module = torch.compile(step_module)
        windows.to(device)

        bar = tqdm(total=config.steps, initial=step, desc=f"train {config.name}", unit="step",
                   disable=not (progress and is_writer), dynamic_ncols=True)
        tokens_per_step = config.batch_size * config.seq_len
        started = time.perf_counter()
        interval_start, interval_steps, sums = started, 0, {}
        while step < config.steps:
            lr = config.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(_step_seed(config.seed, step, rank))  # the model's sampling noise for this step
            batch = windows.batch(step, config.batch_size, config.seed, rank, world_size)  # (B / world, T, M, F)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, metrics = step_module(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1

            metrics = {"loss": loss.detach(), **{k: v for k, v in metrics.items() if k != "loss"}}
            for key, value in metrics.items():  # summed on the device; read back only at log steps
                value = value.detach().float() if torch.is_tensor(value) else torch.tensor(float(value))
                sums[key] = sums[key] + value if key in sums else value
            interval_steps += 1

            if step % config.log_every == 0 or step == config.steps:
                keys = sorted(sums)
                means = torch.stack([sums[k].to(device).float() for k in keys]) / interval_steps
                if world_size > 1:
                    dist.all_reduce(means)
                    means /= world_size
                now = time.perf_counter()
                line = {"step": step, "loss": None}
                line.update({k: float(v) for k, v in zip(keys, means.tolist())})
                line.update({"lr": lr, "tokens_per_second": tokens_per_step * interval_steps / (now - interval_start),
                             "elapsed_seconds": elapsed_before + now - started})
                if is_writer:
                    with open(run_dir / METRICS_FILE, "a") as handle:
                        handle.write(json.dumps(line) + "\n")
                    bar.set_postfix(loss=f"{line['loss']:.4f}", tok_s=f"{line['tokens_per_second']:.0f}")
                interval_start, interval_steps, sums = now, 0, {}
            bar.update(1)

            if is_writer:
                elapsed = elapsed_before + time.perf_counter() - started
                if step % config.checkpoint_every == 0 or step == config.steps:
                    _save_state(run_dir / STATE_FILE, model, optimizer, step, elapsed, device)
                    save_weights(run_dir / MODEL_FILE, model, model_config, step)
                if step in config.keep_checkpoints_at or step == config.steps:
                    _save_permanent(run_dir, model, model_config, step)
        if world_size > 1:
            dist.barrier()  # no rank leaves before rank 0 has written the final checkpoint
        return run_dir
    finally:
        if bar is not None:
            bar.close()
        if lock is not None:
            (run_dir / LOCK_FILE).unlink(missing_ok=True)
            lock.close()
        if created_group:
            dist.destroy_process_group()


def _lock_run_dir(run_dir: Path):
    """Hold an exclusive lock on ``run_dir`` while training, so two processes never write one run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "w")
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise CheckpointError(
            f"{run_dir} is being trained by another process right now (it holds {LOCK_FILE}); wait for it to "
            "finish, stop it, or train under another name") from None
    return handle


def _save_permanent(run_dir: Path, model: nn.Module, model_config, step: int) -> None:
    folder = run_dir / "checkpoints" / f"step-{step:06d}"
    save_weights(folder / MODEL_FILE, model, model_config, step)
    with atomic_write(folder / CONFIG_FILE, "w") as handle:
        json.dump(json.loads((run_dir / CONFIG_FILE).read_text()), handle, indent=2)


def _start_run_files(run_dir: Path, record: dict, model, model_config, optimizer, step: int, elapsed: float,
                     device, config: TrainConfig) -> None:
    """config.json (rewritten: resumable fields may have changed); metrics cut back to the resume point;
    the step-0 checkpoint of a new run."""
    with atomic_write(run_dir / CONFIG_FILE, "w") as handle:
        json.dump(record, handle, indent=2)
    metrics = run_dir / METRICS_FILE
    if metrics.exists():  # lines logged after the checkpoint we resume from are computed again
        kept = [row for row in _read_metric_lines(metrics) if row.get("step", 0) <= step]
        with atomic_write(metrics, "w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in kept)
    if step == 0:
        _save_state(run_dir / STATE_FILE, model, optimizer, 0, elapsed, device)
        save_weights(run_dir / MODEL_FILE, model, model_config, 0)
        if 0 in config.keep_checkpoints_at:
            _save_permanent(run_dir, model, model_config, 0)
    else:
        # model.safetensors is written after state.safetensors; a crash between the two leaves it one checkpoint
        # behind, so bring it level with the state we resume from.
        try:
            _, weights_meta = read_safetensors(run_dir / MODEL_FILE)
            level = int(weights_meta.get("step", -1)) == step
        except CheckpointError:
            level = False
        if not level:
            save_weights(run_dir / MODEL_FILE, model, model_config, step)


# ----------------------------------------------------------------------------------------------------------------
# Command line


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m wmlib train``."""
    from .models import ARCHITECTURES, DYNAMICS, OBJECTIVES, SIZES

    defaults = TrainConfig()
    parser.add_argument("--profile", default=None, help="corpus profile: tiny, default, large (default: $WMLIB_PROFILE or default)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="a named model of wmlib.runs (transformer-contrastive, rssm-contrastive, "
                             "rssm-reconstruction, transformer-reconstruction, masked-autoencoder: the book's settings "
                             "for the profile), or the name of a custom run set by the options below (default: "
                             "<dynamics>-<objective>); the run lives in <data>/<profile>/runs/<NAME>")
    parser.add_argument("--preset", default=None, choices=sorted(SIZES), help=f"model sizes (default: {defaults.preset})")
    parser.add_argument("--architecture", default=None, choices=ARCHITECTURES,
                        help="world_model, or masked_autoencoder (the reconstruction control)")
    parser.add_argument("--dynamics", default=None, choices=DYNAMICS, help="world-model dynamics (default: rssm)")
    parser.add_argument("--objective", default=None, choices=OBJECTIVES, help="training objective (default: contrastive)")
    parser.add_argument("--steps", type=int, default=None, help=f"optimizer steps in all (default: {defaults.steps})")
    parser.add_argument("--seed", type=int, default=None, help=f"default: {defaults.seed}")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"global batch, all processes (default: {defaults.batch_size})")
    parser.add_argument("--seq-len", type=int, default=None,
                        help=f"tokens per window, 25 per second (default: {defaults.seq_len})")
    parser.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default: {defaults.lr})")
    parser.add_argument("--schedule", default=None, choices=("cosine", "constant"),
                        help=f"default: {defaults.schedule}")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the loss (faster steps after a one-off compile; see bench/train_bench.py)")
    parser.add_argument("--run-dir", default=None, help="where to write the run (default: <data>/<profile>/runs/<name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``train`` arguments.

    A named model (``--model`` one of ``wmlib.runs.MODELS``, or model options that match one) takes the book's
    settings for the profile, with any training option given on top; with no model option at all that is the
    book's default model.  Any other name or combination is a custom run with the :class:`TrainConfig` defaults.
    """
    from .runs import DEFAULT_MODEL, MODELS, run_config

    training = {key: getattr(args, key) for key in ("steps", "seed", "batch_size", "seq_len", "lr", "schedule")
                if getattr(args, key) is not None}
    if args.compile:
        training["compile"] = True
    overrides = {key: getattr(args, key) for key in ("architecture", "dynamics", "objective")
                 if getattr(args, key) is not None}
    preset = args.preset or TrainConfig.preset
    model_config = _model_config_from_dict({**_preset_dict(preset), **overrides})
    if model_config.architecture == "masked_autoencoder":
        derived = "masked-autoencoder"
    else:
        derived = f"{model_config.dynamics}-{model_config.objective}"
    name = args.model or (DEFAULT_MODEL if not overrides and not args.preset else derived)
    if name in MODELS:
        named = _model_config_from_dict({**_preset_dict(preset), **MODELS[name]})
        if args.preset or any(getattr(named, key) != value for key, value in overrides.items()):
            raise ValueError(f"--model {name} is a named model ({MODELS[name]}, the profile's preset); give a custom "
                             "run another --model name to change its model options")
        return run_config(name, args.profile, **training)
    return TrainConfig(profile=get_profile(args.profile).name, name=name, preset=preset, model_overrides=overrides,
                       **training)


def _preset_dict(preset: str) -> dict:
    from .models import ModelConfig

    return ModelConfig.preset(preset).to_dict()


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``python -m wmlib train`` with parsed arguments; returns the exit status."""
    try:
        config = config_from_args(args)
        run_dir = train(config, args.run_dir, progress=not args.no_progress)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if _distributed()[0] == 0:
        rows = _read_metric_lines(run_dir / METRICS_FILE)
        last = f", loss {rows[-1]['loss']:.4f} at step {rows[-1]['step']}" if rows else ""
        print(f"{config.name}: {run_dir}{last}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m wmlib.train ...`` (the same options as ``python -m wmlib train``)."""
    parser = argparse.ArgumentParser(prog="python -m wmlib.train", description="Train a world model.")
    add_train_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
