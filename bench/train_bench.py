"""Benchmark: training throughput, MFU and encoding speed of the world models, against a plain RSSM loop.

    .venv/bin/python bench/train_bench.py [--preset default] [--batch 16] [--length 64] [--steps 6] [--rounds 5]
                                          [--no-compile]

Prints one table.  MFU (model FLOPs utilisation) = FLOPs of a training step (counted by
``torch.utils.flop_counter`` on the real step, forward + backward) × steps per second / the fp32 matmul peak
measured in the same run (2048³ ``torch.mm``).  The reference row is the plain way to write an RSSM: a per-step
Python loop over ``nn.GRUCell`` with the prior, posterior and KL inside the loop, at the same sizes and with the
same InfoNCE head (one, predicting one token ahead; the "1 head" RSSM row has the same loss).  A second
reference, a plain causal ``nn.TransformerEncoder`` with one InfoNCE head, calibrates the transformer's MFU.
Encoding real-time factor = seconds of audio encoded per second of wall time (``features`` without gradients on
batches of ``--encode-batch`` windows, which is what analyses run); its MFU is the same ratio for that pass.
The "compiled" rows run the default models' loss and ``features`` through ``torch.compile`` (what
``python -m wmlib train --compile`` does); their FLOPs are those of the eager model, and "compile s" is the
time their first calls took (cold, unless inductor's cache under /tmp already holds their kernels).

A shared 2-core machine changes speed by tens of percent from minute to minute (the 2048³ matmul alone ranges
over ±20% within one run), so the measurements are interleaved: each round times every model for a block of
``--steps`` training steps, with a one-second block of peak matmuls before and after each.  A model's MFU in a
round is its FLOP rate over the mean of the two peaks around it, and the table gives the median over rounds
(and their range): the ratio to the machine's speed of that moment, not to its fastest moment of the run.
Tokens/s, the plain-loop ratios and the encoding speed are each model's best round.  Numbers only; nothing here
passes or fails.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from wmlib.model.models import ModelConfig, build_model, count_parameters, prepare_for_compile

SECONDS_PER_TOKEN = 0.04


def matmul_block(size: int = 2048, seconds: float = 1.0):
    """A block of fp32 ``size``³ matmuls lasting about ``seconds`` (as long as a model's block), and its FLOPs:
    ``(work, flops)``.  Equal durations give the peak and the models the same chance of a fast moment."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    start = time.perf_counter()
    torch.mm(a, b)
    repeats = max(4, round(seconds / (time.perf_counter() - start)))

    def work():
        for _ in range(repeats):
            torch.mm(a, b)

    return work, 2 * size**3 * repeats


class PlainGRUCellRSSM(nn.Module):
    """The reference: an RSSM written the obvious way, every step inside the Python loop."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.c = c
        stoch = c.stoch_vars * c.stoch_classes
        self.encoder = nn.Sequential(nn.Linear(c.token_dim, c.hidden_dim), nn.SiLU(),
                                     nn.Linear(c.hidden_dim, c.embed_dim))
        self.input_layer = nn.Linear(stoch, c.hidden_dim)
        self.cell = nn.GRUCell(c.hidden_dim, c.deter_dim)
        self.prior = nn.Sequential(nn.Linear(c.deter_dim, c.hidden_dim), nn.SiLU(), nn.Linear(c.hidden_dim, stoch))
        self.posterior = nn.Sequential(nn.Linear(c.deter_dim + c.embed_dim, c.hidden_dim), nn.SiLU(),
                                       nn.Linear(c.hidden_dim, stoch))
        self.head = nn.Linear(c.deter_dim + stoch, c.proj_dim)
        self.target = nn.Linear(c.embed_dim, c.proj_dim)

    def loss(self, tokens: torch.Tensor):
        c = self.c
        batch, length = tokens.shape[:2]
        embeddings = self.encoder(((tokens + 50) / 25).flatten(2))  # (B, T, E)
        deter = tokens.new_zeros(batch, c.deter_dim)
        stoch = tokens.new_zeros(batch, c.stoch_vars * c.stoch_classes)
        kl, predictions = 0.0, []
        for t in range(length):
            deter = self.cell(self.input_layer(stoch), deter)  # (B, D)
            prior_logits = self.prior(deter).view(batch, c.stoch_vars, c.stoch_classes)
            post_logits = self.posterior(torch.cat([deter, embeddings[:, t]], -1)).view(
                batch, c.stoch_vars, c.stoch_classes)
            post = post_logits.softmax(-1)
            sample = F.one_hot(torch.distributions.Categorical(probs=post).sample(), c.stoch_classes).float()
            stoch = (sample + post - post.detach()).flatten(1)  # straight-through
            kl = kl + (post * (post.clamp_min(1e-8).log() - prior_logits.log_softmax(-1))).sum((-1, -2)).mean()
            predictions.append(self.head(torch.cat([deter, prior_logits.softmax(-1).flatten(1)], -1)))
        queries = F.normalize(torch.stack(predictions, 1).flatten(0, 1), dim=-1)  # (B*T, P)
        keys = F.normalize(self.target(embeddings).flatten(0, 1), dim=-1)  # (B*T, P)
        info_nce = F.cross_entropy(queries @ keys.T / c.temperature, torch.arange(len(keys)))
        return info_nce + kl / length, {}


class PlainTransformerInfoNCE(nn.Module):
    """The issue's calibration point: a plain causal ``nn.TransformerEncoder`` (d=256, 4 layers, pre-norm GELU)
    with one InfoNCE head predicting the next token's embedding, at the same batch."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.c = c
        self.embed = nn.Linear(c.token_dim, c.d_model)
        layer = nn.TransformerEncoderLayer(c.d_model, c.n_heads, 4 * c.d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(c.d_model, c.proj_dim)
        self.target = nn.Linear(c.d_model, c.proj_dim)

    def loss(self, tokens: torch.Tensor):
        x = self.embed(((tokens + 50) / 25).flatten(2))  # (B, T, d)
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        outputs = self.transformer(x, mask=mask, is_causal=True)  # (B, T, d)
        queries = F.normalize(self.head(outputs[:, :-1]).flatten(0, 1), dim=-1)  # (B*(T-1), P)
        keys = F.normalize(self.target(x[:, 1:]).flatten(0, 1), dim=-1)
        logits = queries @ keys.T / self.c.temperature
        return F.cross_entropy(logits, torch.arange(len(keys))), {}


def allocator_settings() -> str:
    """The memory-allocator settings of this process's environment (they change encoding speed; see the README)."""
    names = sorted(name for name in os.environ
                   if name.startswith(("MALLOC_", "TCMALLOC_")) or name in ("GLIBC_TUNABLES", "LD_PRELOAD"))
    return ", ".join(f"{name}={os.environ[name]}" for name in names) or "the C library's defaults"


def timed(work, calls: int) -> float:
    """Seconds per call of ``work`` over one block of ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - start) / calls


class Subject:
    """One benchmarked model: its training step (FLOPs counted once, eager) and, if it has ``features``, its
    encoding; with ``compiled``, both through ``torch.compile``."""

    def __init__(self, name: str, model: nn.Module, tokens: torch.Tensor, encode_tokens: torch.Tensor,
                 compiled: bool = False):
        torch.manual_seed(0)
        self.name, self.model, self.tokens, self.encode_tokens = name, model, tokens, encode_tokens
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as wmlib.model.train uses it
        self.loss, self.features = model.loss, getattr(model, "features", None)
        self.train_step()  # warm-up
        with FlopCounterMode(display=False) as counter:
            self.train_step()
        self.flops = counter.get_total_flops()
        self.encode_flops = self.compile_seconds = None
        if self.features is not None:
            self.encode()  # warm-up
            with FlopCounterMode(display=False) as counter:
                self.encode()
            self.encode_flops = counter.get_total_flops()
        if compiled:
            start = time.perf_counter()
            self.loss = torch.compile(model.loss)
            self.train_step()  # compiles
            if self.features is not None:
                self.features = torch.compile(self.features)
                self.encode()
            self.compile_seconds = time.perf_counter() - start
        self.train_seconds, self.encode_seconds, self.local_peaks, self.encode_peaks = [], [], [], []

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, _ = self.loss(self.tokens)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def encode(self):
        self.model.eval()
        self.features(self.encode_tokens)

    def row(self) -> dict:
        """Tokens/s and encoding speed from the best round; MFU the median over rounds of the round's FLOP rate
        over the peak measured just before and after that round's block."""
        seconds = min(self.train_seconds)
        mfu = [self.flops / t / peak for t, peak in zip(self.train_seconds, self.local_peaks)]
        row = {"model": self.name, "params (M)": round(count_parameters(self.model) / 1e6, 2),
               "train tokens/s": round(self.tokens.shape[0] * self.tokens.shape[1] / seconds),
               "GFLOP/step": round(self.flops / 1e9, 2), "MFU %": round(100 * float(np.median(mfu)), 1),
               "MFU range %": f"{100 * min(mfu):.0f}–{100 * max(mfu):.0f}"}
        if self.features is not None:
            audio_seconds = self.encode_tokens.shape[0] * self.encode_tokens.shape[1] * SECONDS_PER_TOKEN
            row["encode x real time"] = round(audio_seconds / min(self.encode_seconds))
            encode_mfu = [self.encode_flops / t / peak for t, peak in zip(self.encode_seconds, self.encode_peaks)]
            row["encode MFU %"] = round(100 * float(np.median(encode_mfu)), 1)
        row["compile s"] = "—" if self.compile_seconds is None else round(self.compile_seconds)
        return row


def interleave(subjects: list[Subject], rounds: int, steps: int, peak_seconds: float) -> list[float]:
    """Time every subject's training, then its encoding, in ``rounds`` rounds of blocks of ``steps`` calls, each
    block between two blocks of peak matmuls; record the times and the peaks around them on the subjects.  Returns
    every peak reading (FLOP/s)."""
    peak_block, peak_flops = matmul_block(seconds=peak_seconds)
    peaks = []

    def peak_now() -> float:
        peaks.append(peak_flops / timed(peak_block, 1))
        return peaks[-1]

    for _ in tqdm(range(rounds), desc="rounds", unit="round"):
        before = peak_now()
        for subject in subjects:  # peak, model, peak, model, ..., peak: each model between two peak blocks
            subject.train_seconds.append(timed(subject.train_step, steps))
            after = peak_now()
            subject.local_peaks.append((before + after) / 2)
            before = after
        for subject in subjects:  # encoding, the same way
            if subject.features is not None:
                subject.encode_seconds.append(timed(subject.encode, steps))
                after = peak_now()
                subject.encode_peaks.append((before + after) / 2)
                before = after
    return peaks


def add_measurement_arguments(parser: argparse.ArgumentParser, steps: int, rounds: int) -> None:
    """The options of both bench scripts: preset, batches and the interleaved measurement (``steps``, ``rounds``:
    the script's defaults)."""
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=steps, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds (MFU: median; speeds: best)")
    parser.add_argument("--encode-batch", type=int, default=64, help="windows per batch when encoding")
    parser.add_argument("--peak-seconds", type=float, default=1.0, help="duration of one block of peak matmuls")


def measurement_inputs(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """Every core, seed 0, and dB-like random tokens: ``(batch, length, 64, 4)`` to train on and
    ``(encode_batch, length, 64, 4)`` to encode."""
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    tokens = torch.randn(args.batch, args.length, 64, 4) * 15 - 40
    return tokens, torch.randn(args.encode_batch, args.length, 64, 4) * 15 - 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_measurement_arguments(parser, steps=6, rounds=5)
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    args = parser.parse_args()
    tokens, encode_tokens = measurement_inputs(args)
    models = {
        "rssm contrastive": ModelConfig.preset(args.preset, dynamics="rssm", objective="contrastive"),
        # The reference predicts one token ahead with one InfoNCE head: the same loss, like for like.
        "rssm contrastive, 1 head": ModelConfig.preset(args.preset, dynamics="rssm", objective="contrastive",
                                                       predict_horizons=1),
        "rssm reconstruction": ModelConfig.preset(args.preset, dynamics="rssm", objective="reconstruction"),
        "transformer contrastive": ModelConfig.preset(args.preset, dynamics="transformer", objective="contrastive"),
        "masked autoencoder": ModelConfig.preset(args.preset, architecture="masked_autoencoder"),
    }
    subjects = [Subject(name, build_model(config), tokens, encode_tokens) for name, config in models.items()]
    if not args.no_compile:
        prepare_for_compile()  # as python -m wmlib train --compile does
        for name in ("rssm contrastive", "transformer contrastive"):
            subjects.append(Subject(f"{name}, compiled", build_model(models[name]), tokens, encode_tokens,
                                    compiled=True))
    subjects.append(Subject("reference: plain nn.TransformerEncoder + InfoNCE",
                            PlainTransformerInfoNCE(models["transformer contrastive"]), tokens, encode_tokens))
    subjects.append(Subject("reference: plain GRUCell loop", PlainGRUCellRSSM(models["rssm contrastive"]), tokens,
                            encode_tokens))
    peaks = interleave(subjects, args.rounds, args.steps, args.peak_seconds)
    rows = [subject.row() for subject in subjects]
    peak = float(np.median(peaks))
    table = pd.DataFrame(rows)
    reference = table.iloc[-1]["train tokens/s"]
    table["vs plain loop"] = (table["train tokens/s"] / reference).round(2)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 matmul peak (2048³, {len(peaks)} blocks of "
          f"{args.peak_seconds:g} s in this run): "
          f"median {peak / 1e9:.0f}, range {min(peaks) / 1e9:.0f}–{max(peaks) / 1e9:.0f} GFLOP/s; "
          f"memory allocator: {allocator_settings()}")
    print(f"preset {args.preset}, training batch {args.batch} × {args.length} tokens, encoding batch "
          f"{args.encode_batch} × {args.length}; blocks of {args.steps} calls, {args.rounds} interleaved rounds: "
          "tokens/s and encoding from the best round, MFU the median over rounds against the peak measured "
          "around each block")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
