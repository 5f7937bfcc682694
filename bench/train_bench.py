"""Benchmark: training throughput, MFU and encoding speed of the world models, against a plain RSSM loop.

    .venv/bin/python bench/train_bench.py [--preset default] [--batch 16] [--length 64] [--steps 6] [--rounds 3]

Prints one table.  MFU (model FLOPs utilisation) = FLOPs of a training step (counted by
``torch.utils.flop_counter`` on the real step, forward + backward) × steps per second / the fp32 matmul peak
measured in the same run (blocks of 2048³ ``torch.mm``).  The reference row is the plain way to write an RSSM: a
per-step Python loop over ``nn.GRUCell`` with the prior, posterior and KL inside the loop, at the same sizes and
with the same InfoNCE head.  Encoding real-time factor = seconds of audio encoded per second of wall time
(``features`` without gradients on batches of ``--encode-batch`` windows, which is what analyses run).

A shared 2-core machine changes speed by tens of percent from minute to minute, so the measurements are
interleaved: each round times the matmul peak, then every model, each for a block of ``--steps`` calls, and every
figure is its best block over ``--rounds`` rounds.  Peak and models are measured the same way (whole blocks, best
round), so a quiet moment favours neither.  Numbers only; nothing here passes or fails.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from wmlib.models import ModelConfig, build_model, count_parameters

SECONDS_PER_TOKEN = 0.04


def matmul_block(size: int = 2048, repeats: int = 8):
    """A block of ``repeats`` fp32 ``size``³ matmuls and its FLOP count: ``(work, flops)``."""
    a, b = torch.randn(size, size), torch.randn(size, size)

    def work():
        for _ in range(repeats):
            torch.mm(a, b)

    work()  # warm-up
    return work, 2 * size**3 * repeats


class PlainGRUCellRSSM(nn.Module):
    """The reference: an RSSM written the obvious way, every step inside the Python loop."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.c = c
        stoch = c.stoch_vars * c.stoch_classes
        self.encoder = nn.Sequential(nn.Linear(c.token_dim, c.hidden_dim), nn.SiLU(), nn.Linear(c.hidden_dim, c.embed_dim))
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
            post_logits = self.posterior(torch.cat([deter, embeddings[:, t]], -1)).view(batch, c.stoch_vars, c.stoch_classes)
            post = post_logits.softmax(-1)
            sample = F.one_hot(torch.distributions.Categorical(probs=post).sample(), c.stoch_classes).float()
            stoch = (sample + post - post.detach()).flatten(1)  # straight-through
            kl = kl + (post * (post.clamp_min(1e-8).log() - prior_logits.log_softmax(-1))).sum((-1, -2)).mean()
            predictions.append(self.head(torch.cat([deter, prior_logits.softmax(-1).flatten(1)], -1)))
        queries = F.normalize(torch.stack(predictions, 1).flatten(0, 1), dim=-1)  # (B*T, P)
        keys = F.normalize(self.target(embeddings).flatten(0, 1), dim=-1)  # (B*T, P)
        info_nce = F.cross_entropy(queries @ keys.T / c.temperature, torch.arange(len(keys)))
        return info_nce + kl / length, {}


def timed(work, calls: int) -> float:
    """Seconds per call of ``work`` over one block of ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - start) / calls


def training_step(model, optimizer, tokens):
    optimizer.zero_grad(set_to_none=True)
    loss, _ = model.loss(tokens)
    loss.backward()
    optimizer.step()


class Subject:
    """One benchmarked model: its training step (FLOPs counted once) and, if it has ``features``, its encoding."""

    def __init__(self, name: str, model: nn.Module, tokens: torch.Tensor, encode_tokens: torch.Tensor):
        torch.manual_seed(0)
        self.name, self.model, self.tokens, self.encode_tokens = name, model, tokens, encode_tokens
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as wmlib.train uses it
        self.train_step()  # warm-up
        with FlopCounterMode(display=False) as counter:
            self.train_step()
        self.flops = counter.get_total_flops()
        self.encodes = hasattr(model, "features")
        if self.encodes:
            self.encode()  # warm-up
        self.train_seconds, self.encode_seconds = [], []

    def train_step(self):
        self.model.train()
        training_step(self.model, self.optimizer, self.tokens)

    @torch.no_grad()
    def encode(self):
        self.model.eval()
        self.model.features(self.encode_tokens)

    def measure(self, steps: int):
        self.train_seconds.append(timed(self.train_step, steps))
        if self.encodes:
            self.encode_seconds.append(timed(self.encode, steps))

    def row(self, peak: float) -> dict:
        seconds = min(self.train_seconds)
        row = {"model": self.name, "params (M)": round(count_parameters(self.model) / 1e6, 2),
               "train tokens/s": round(self.tokens.shape[0] * self.tokens.shape[1] / seconds),
               "GFLOP/step": round(self.flops / 1e9, 2), "MFU %": round(100 * self.flops / seconds / peak, 1)}
        if self.encodes:
            audio_seconds = self.encode_tokens.shape[0] * self.encode_tokens.shape[1] * SECONDS_PER_TOKEN
            row["encode x real time"] = round(audio_seconds / min(self.encode_seconds))
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each figure is its best round")
    parser.add_argument("--encode-batch", type=int, default=64, help="windows per batch when encoding")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    tokens = torch.randn(args.batch, args.length, 64, 4) * 15 - 40  # (B, T, M, F) dB-like
    encode_tokens = torch.randn(args.encode_batch, args.length, 64, 4) * 15 - 40
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
    subjects.append(Subject("reference: plain GRUCell loop", PlainGRUCellRSSM(models["rssm contrastive"]), tokens,
                            encode_tokens))
    peak_block, peak_flops = matmul_block()
    peaks = []
    for _ in tqdm(range(args.rounds), desc="rounds", unit="round"):
        peaks.append(peak_flops / timed(peak_block, 1))
        for subject in subjects:
            subject.measure(args.steps)
    peak = max(peaks)
    rows = [subject.row(peak) for subject in subjects]
    if min(peaks) < 0.85 * peak:
        print(f"note: the matmul peak ranged {min(peaks) / 1e9:.0f}–{peak / 1e9:.0f} GFLOP/s over the rounds; the "
              "machine's speed changed during the run, and each figure is its best round")
    table = pd.DataFrame(rows)
    reference = table.iloc[-1]["train tokens/s"]
    table["vs plain loop"] = (table["train tokens/s"] / reference).round(2)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s (2048³, measured in this run)")
    print(f"preset {args.preset}, training batch {args.batch} × {args.length} tokens, encoding batch "
          f"{args.encode_batch} × {args.length}; blocks of {args.steps} calls, best of {args.rounds} interleaved rounds")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
