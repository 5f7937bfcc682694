"""Training the world model: windows of tokens, the loop, and exact resume.

One function, :func:`train`, turns a :class:`TrainConfig` into a run directory (its files, and how they are
written and read, are :mod:`wmlib.model.checkpoints`).  Running :func:`train` again with the same config continues
from the last checkpoint, or returns at once when the run is finished.

Reproducibility.  The batch of step ``s`` is drawn from a generator seeded by ``(seed, s)`` and the model's own
randomness (RSSM sampling) from ``(seed, s, rank)``, so a run interrupted and resumed ends with exactly the weights
of an uninterrupted one, and ``torchrun --nproc_per_node 2`` sees the same global batches as one process (each rank
takes its slice).

Used by :mod:`wmlib.model.runs` (the book's named models) and ``python -m wmlib train``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from wmlib.data.files import atomic_write
from wmlib.data.profiles import data_root, get_profile

from .checkpoints import (
    CONFIG_FILE,
    LOCK_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FORMAT,
    STATE_FILE,
    CheckpointError,
    check_run_dir,
    json_normal,
    load_state,
    read_metric_lines,
    read_safetensors,
    save_permanent,
    save_state,
    save_weights,
)


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
        preset: model size preset (a key of ``wmlib.model.models.SIZES``).
        model_overrides: ``ModelConfig`` fields set on top of the preset, e.g. ``{"dynamics": "transformer"}``.
        split: which split's utterances are trained on.
        domains: which domains of the corpus (``generated``, ``randomized``, ``real``) are trained on; the book's
            sim-to-real ablation trains on fewer.
        seq_len: tokens per training window (64 = 2.56 s); utterances shorter than this are skipped.
        batch_size: windows per step, summed over all processes (the *global* batch).
        steps: optimizer steps in all: the length of the learning-rate schedule.
        stop_at: stop after this step (``None``: at ``steps``), keeping the schedule of ``steps``.  The early
            checkpoint of a longer run, without its cost: e.g. a second seed of the default model compared with the
            default run's checkpoint at the same step.  Continue later with ``stop_at=None``.
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
        augment: log-mel augmentation drawn anew for every window of every step
            (:class:`wmlib.data.mel_augment.MelAugmentConfig` fields; ``{}``: its defaults; ``None``: off).
    """

    profile: str = "default"
    name: str = "default"
    preset: str = "default"
    model_overrides: dict = field(default_factory=dict)
    split: str = "train"
    domains: tuple[str, ...] = ("generated", "randomized", "real")
    seq_len: int = 64
    batch_size: int = 16
    steps: int = 1000
    stop_at: int | None = None
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
    augment: dict | None = None

    def __post_init__(self):
        assert self.schedule in ("cosine", "constant"), (
            f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        assert self.amp in ("auto", "bf16", "off"), f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}"
        assert self.seq_len >= 2, f"seq_len must be at least 2 tokens, got {self.seq_len}"
        assert self.batch_size >= 1 and self.steps >= 0, "batch_size must be >= 1 and steps >= 0"
        assert self.stop_at is None or 0 <= self.stop_at <= self.steps, (
            f"stop_at must be between 0 and steps={self.steps}, got {self.stop_at}")
        assert self.checkpoint_every >= 1 and self.log_every >= 1, "checkpoint_every and log_every must be >= 1"
        assert self.name and "/" not in self.name, f"name must be a non-empty folder name, got {self.name!r}"
        self.keep_checkpoints_at = tuple(sorted({int(s) for s in self.keep_checkpoints_at}))
        self.domains = tuple(self.domains)
        if self.augment is not None:
            from wmlib.data.mel_augment import augment_from_dict

            self.augment = augment_from_dict(self.augment).config.to_dict()  # checked, and every field written out
        assert self.domains and set(self.domains) <= {"generated", "randomized", "real"}, (
            f"domains must be among generated, randomized, real; got {self.domains!r}")

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
        return json_normal(asdict(self))


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
        tokens: a :class:`wmlib.data.features.TokenSet`.
        seq_len: tokens per window.
        split: the ``labels["split"]`` value to keep (``None``: every token).
        domains: the ``labels["domain"]`` values to keep (``None``: every domain).
    """

    def __init__(self, tokens, seq_len: int, split: str | None = "train", domains=None):
        labels = tokens.labels
        keep = np.ones(len(labels), bool) if split is None else (labels["split"].to_numpy() == split)
        if domains is not None and "domain" in labels:
            keep &= labels["domain"].isin(list(domains)).to_numpy()
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

    def to(self, device) -> TokenWindows:
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


def _augment_batch(augment, windows: TokenWindows, batch: torch.Tensor, seed: int, step: int, rank: int = 0,
                   world_size: int = 1) -> torch.Tensor:
    """``batch`` (this rank's slice of the global batch) freshly perturbed.  Window ``i`` of the global batch draws
    everything (the window mixed in too) from a generator seeded by ``(seed, step, i)``, so a resumed run perturbs
    exactly as the uninterrupted one and ``torchrun`` with any number of processes as one process."""
    from wmlib.data.mel_augment import augmentation_seed

    first = rank * len(batch)  # this rank's first window in the global batch
    out = []
    for index in range(len(batch)):
        generator = torch.Generator().manual_seed(augmentation_seed(seed, step, first + index))
        other = windows.windows(torch.randint(0, len(windows), (1,), generator=generator))  # (1, T, M, F)
        out.append(augment(batch[index:index + 1], other, generator))
    return torch.cat(out)  # (B / world, T, M, F)


def _distributed() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from torchrun's environment; ``(0, 0, 1)`` when not launched by it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 0, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"])), world_size


def is_main_process() -> bool:
    """Whether this process writes files and prints: rank 0 under ``torchrun``, or the only process."""
    return _distributed()[0] == 0


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
        tokens: a ``TokenSet`` to train on instead of the profile's (e.g. a real corpus from ``wmlib.data.loaders``,
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
            from wmlib.data.features import load_tokens

            tokens = load_tokens(config.profile, progress=progress and is_writer)
        windows = TokenWindows(tokens, config.seq_len, config.split, config.domains)
        model_config = config.model_config()
        assert world_size == 1 or config.batch_size % world_size == 0, (
            f"batch_size {config.batch_size} must be divisible by the {world_size} processes")
        record = {"format": RUN_FORMAT, "model": json_normal(model_config.to_dict()), "train": config.to_dict(),
                  "data": {"fingerprint": windows.fingerprint}, "data_summary": json_normal(windows.summary())}
        check_run_dir(run_dir, record)

        torch.manual_seed(config.seed)  # initialisation
        model = build_model(model_config).to(device)
        model.train()
        # matrices decay; gains and biases don't
        decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=(0.9, 0.95), fused=True)
        step, elapsed_before = 0, 0.0
        if (run_dir / STATE_FILE).is_file():
            step, elapsed_before = load_state(run_dir / STATE_FILE, model, optimizer, device)
        if world_size > 1:
            dist.barrier()  # every rank has read the checkpoint before rank 0 writes anything
        if is_writer:
            _start_run_files(run_dir, record, model, model_config, optimizer, step, elapsed_before, device, config)
        last = config.steps if config.stop_at is None else config.stop_at
        if step >= last:
            return run_dir

        step_module: nn.Module = _LossModule(model)
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            step_module = DistributedDataParallel(step_module,
                                                  device_ids=[local_rank] if device.type == "cuda" else None)
        if config.compile:
            prepare_for_compile()  # the RSSM's loop eager; eager's random numbers (the RSSM's and the MAE's sampling)
            step_module = torch.compile(step_module)
        windows.to(device)
        augment = None
        if config.augment is not None:
            from wmlib.data.mel_augment import augment_from_dict

            features = tokens.config
            augment = augment_from_dict(config.augment, features.sample_rate, features.fmin, features.fmax).train()

        bar = tqdm(total=last, initial=step, desc=f"train {config.name}", unit="step",
                   disable=not (progress and is_writer), dynamic_ncols=True)
        tokens_per_step = config.batch_size * config.seq_len
        started = time.perf_counter()
        interval_start, interval_steps, sums = started, 0, {}
        while step < last:
            lr = config.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(_step_seed(config.seed, step, rank))  # the model's sampling noise for this step
            batch = windows.batch(step, config.batch_size, config.seed, rank, world_size)  # (B / world, T, M, F)
            if augment is not None:
                batch = _augment_batch(augment, windows, batch, config.seed, step, rank, world_size)
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

            if step % config.log_every == 0 or step == last:
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
                if step % config.checkpoint_every == 0 or step == last:
                    save_state(run_dir / STATE_FILE, model, optimizer, step, elapsed, device)
                    save_weights(run_dir / MODEL_FILE, model, model_config, step)
                if step in config.keep_checkpoints_at or step == last:
                    save_permanent(run_dir, model, model_config, step)
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


def _start_run_files(run_dir: Path, record: dict, model, model_config, optimizer, step: int, elapsed: float,
                     device, config: TrainConfig) -> None:
    """config.json (rewritten: resumable fields may have changed); metrics cut back to the resume point;
    the step-0 checkpoint of a new run."""
    with atomic_write(run_dir / CONFIG_FILE, "w") as handle:
        json.dump(record, handle, indent=2)
    metrics = run_dir / METRICS_FILE
    if metrics.exists():  # lines logged after the checkpoint we resume from are computed again
        kept = [row for row in read_metric_lines(metrics) if row.get("step", 0) <= step]
        with atomic_write(metrics, "w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in kept)
    if step == 0:
        save_state(run_dir / STATE_FILE, model, optimizer, 0, elapsed, device)
        save_weights(run_dir / MODEL_FILE, model, model_config, 0)
        if 0 in config.keep_checkpoints_at:
            save_permanent(run_dir, model, model_config, 0)
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
