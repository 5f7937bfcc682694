"""Benchmark: what the transformer's width and depth do to its MFU, training speed and encoding speed.

    .venv/bin/python bench/transformer_width.py [--shapes 256x4 320x3 384x2 ...] [--rounds 4] [--steps 4]

The bench targets for this machine ask three things of the default model (the contrastive transformer, width 256,
4 layers): at least 60% MFU, training within 8 minutes, and encoding at 1000× real time or more.  MFU rises with
the width of the matmuls, while tokens/s and encoding speed fall with the FLOPs per token, so this script
prints the trade-off.  Each shape ``WxL`` is the default model with ``d_model`` W, L layers and W / 64 attention
heads (64 dimensions per head, as in the default); every other size stays the preset's.  The plain
``nn.TransformerEncoder`` reference of ``train_bench.py`` (width 256, 4 layers) is measured alongside.

The measurement is ``train_bench.py``'s: rounds that time every shape's training and encoding between blocks of
2048³ matmuls; MFU is the median over rounds against the peak measured around each block, tokens/s and encoding
the best round.  "book training min" is the default model's training in the book (its steps and batch from
``wmlib.model.runs.TRAINING``) at the best round's tokens/s.  Numbers only; nothing here passes or fails.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd
import torch
from train_bench import (
    PlainTransformerInfoNCE,
    Subject,
    add_measurement_arguments,
    allocator_settings,
    interleave,
    measurement_inputs,
)

from wmlib.model.models import ModelConfig, build_model
from wmlib.model.runs import DEFAULT_MODEL, MODELS, TRAINING


def parse_shape(text: str) -> tuple[int, int]:
    """``"384x2"`` -> ``(384, 2)``: width (a multiple of 64) and layers."""
    width, _, layers = text.partition("x")
    if not (width.isdigit() and layers.isdigit() and int(width) % 64 == 0 and int(width) > 0 and int(layers) >= 1):
        raise argparse.ArgumentTypeError(
            f"a shape is WIDTHxLAYERS, the width a multiple of 64 (e.g. 384x2), not {text!r}")
    return int(width), int(layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", type=parse_shape,
                        default=[(256, 4), (320, 3), (384, 2), (384, 3), (512, 2)],
                        help="WIDTHxLAYERS of the transformer (default: the default model's 256x4 and wider ones)")
    add_measurement_arguments(parser, steps=4, rounds=4)
    args = parser.parse_args()
    tokens, encode_tokens = measurement_inputs(args)
    subjects = []
    for width, layers in args.shapes:
        config = ModelConfig.preset(args.preset, **MODELS[DEFAULT_MODEL], d_model=width, n_layers=layers,
                                    n_heads=width // 64)
        subjects.append(Subject(f"{width}x{layers}", build_model(config), tokens, encode_tokens))
    reference = ModelConfig.preset(args.preset, **MODELS[DEFAULT_MODEL])
    subjects.append(Subject("reference: plain nn.TransformerEncoder + InfoNCE", PlainTransformerInfoNCE(reference),
                            tokens, encode_tokens))
    peaks = interleave(subjects, args.rounds, args.steps, args.peak_seconds)
    book = TRAINING["default"]
    book_tokens = book["steps"] * book["batch_size"] * book["seq_len"]
    table = pd.DataFrame([subject.row() for subject in subjects]).drop(columns="compile s")
    table["book training min"] = (book_tokens / table["train tokens/s"] / 60).round(1)
    print(f"{os.cpu_count()} cores, torch {torch.__version__}; fp32 matmul peak (2048³, {len(peaks)} blocks): "
          f"median {np.median(peaks) / 1e9:.0f}, range {min(peaks) / 1e9:.0f}–{max(peaks) / 1e9:.0f} GFLOP/s; "
          f"memory allocator: {allocator_settings()}")
    print(f"preset {args.preset}, training batch {args.batch} × {args.length} tokens, encoding batch "
          f"{args.encode_batch} × {args.length}; blocks of {args.steps} calls, {args.rounds} interleaved rounds; "
          f"book training = the default model's {book['steps']} steps of {book['batch_size']} × {book['seq_len']} "
          "tokens at the best round's tokens/s")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
