"""Benchmark: training throughput, MFU and encoding speed of the world models, against a plain RSSM loop.

    .venv/bin/python bench/train_bench.py [--preset default] [--batch 16] [--length 64] [--steps 6]

Prints one table.  MFU (model FLOPs utilisation) = FLOPs of a training step (counted by
``torch.utils.flop_counter`` on the real step, forward + backward) × steps per second / the fp32 matmul peak
measured in the same run (a 2048³ ``torch.mm``).  The reference row is the plain way to write an RSSM: a per-step
Python loop over ``nn.GRUCell`` with the prior, posterior and KL inside the loop, at the same sizes and with the
same InfoNCE head.  Encoding real-time factor = seconds of audio encoded per second of wall time (``features``
without gradients on batches of ``--encode-batch`` windows, which is what analyses run).  Numbers only; nothing here passes or fails.
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

from wmlib.models import ModelConfig, build_model, count_parameters

SECONDS_PER_TOKEN = 0.04


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 matmul FLOP/s on this machine (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


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


def best_seconds(work, steps: int, rounds: int = 3) -> float:
    """Seconds per call of ``work``: the best of ``rounds`` blocks of ``steps`` calls (robust to a busy machine)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            work()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def training_step(model, optimizer, tokens):
    optimizer.zero_grad(set_to_none=True)
    loss, _ = model.loss(tokens)
    loss.backward()
    optimizer.step()


def measure(name: str, model: nn.Module, tokens: torch.Tensor, steps: int, peak: float,
            encode_tokens: torch.Tensor) -> dict:
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as wmlib.train uses it
    model.train()
    training_step(model, optimizer, tokens)  # warm-up
    with FlopCounterMode(display=False) as counter:
        training_step(model, optimizer, tokens)
    flops = counter.get_total_flops()
    seconds = best_seconds(lambda: training_step(model, optimizer, tokens), steps)
    row = {"model": name, "params (M)": round(count_parameters(model) / 1e6, 2),
           "train tokens/s": round(tokens.shape[0] * tokens.shape[1] / seconds),
           "GFLOP/step": round(flops / 1e9, 2), "MFU %": round(100 * flops / seconds / peak, 1)}
    if hasattr(model, "features"):
        model.eval()
        with torch.no_grad():
            model.features(encode_tokens)
            encode_seconds = best_seconds(lambda: model.features(encode_tokens), steps)
        row["encode x real time"] = round(encode_tokens.shape[0] * encode_tokens.shape[1] * SECONDS_PER_TOKEN
                                          / encode_seconds)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--encode-batch", type=int, default=64, help="windows per batch when encoding")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    tokens = torch.randn(args.batch, args.length, 64, 4) * 15 - 40  # (B, T, M, F) dB-like
    encode_tokens = torch.randn(args.encode_batch, args.length, 64, 4) * 15 - 40
    peak = matmul_peak()
    models = {
        "rssm contrastive": ModelConfig.preset(args.preset, dynamics="rssm", objective="contrastive"),
        "rssm reconstruction": ModelConfig.preset(args.preset, dynamics="rssm", objective="reconstruction"),
        "transformer contrastive": ModelConfig.preset(args.preset, dynamics="transformer", objective="contrastive"),
        "masked autoencoder": ModelConfig.preset(args.preset, architecture="masked_autoencoder"),
    }
    rows = [measure(name, build_model(config), tokens, args.steps, peak, encode_tokens)
            for name, config in models.items()]
    rows.append(measure("reference: plain GRUCell loop", PlainGRUCellRSSM(models["rssm contrastive"]), tokens,
                        args.steps, peak, encode_tokens))
    peak_after = matmul_peak()
    if abs(peak_after - peak) > 0.1 * peak:
        print(f"warning: the matmul peak moved from {peak / 1e9:.0f} to {peak_after / 1e9:.0f} GFLOP/s during the "
              "run; another process is using the CPU and these numbers are noisy")
    table = pd.DataFrame(rows)
    reference = table.iloc[-1]["train tokens/s"]
    table["vs plain loop"] = (table["train tokens/s"] / reference).round(2)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s (2048³, measured now)")
    print(f"preset {args.preset}, training batch {args.batch} × {args.length} tokens, encoding batch "
          f"{args.encode_batch} × {args.length}, {args.steps} timed steps (best of 3 rounds)")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
