"""Benchmark: how fast the CPU BLAS multiplies by a weight stored as ``nn.Linear`` keeps it, and by its transpose.

    .venv/bin/python bench/matmul_layouts.py [--rows 16 64 1024] [--calls 200]

``F.linear(x, W)`` computes ``x @ W.T`` with ``W`` ``(out, in)``: a transposed view.  For a few rows (an RSSM's
batch inside its time loop) that layout was about 4× slower here than multiplying by a contiguous ``(in, out)``
copy, which is why the RSSM's loop (``wmlib.model.rssm_loop.posterior_loop``) makes one.  Prints microseconds per
call and GFLOP/s for the RSSM's loop matrix (512 -> 1792) at each row count, best of 3 blocks.  Numbers only;
nothing here passes or fails.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
import torch.nn.functional as F


def best_microseconds(work, calls: int, rounds: int = 3) -> float:
    work()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            work()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[16, 64, 1024])
    parser.add_argument("--in-features", type=int, default=512)
    parser.add_argument("--out-features", type=int, default=1792)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)
    weight = torch.randn(args.out_features, args.in_features)  # (out, in), as nn.Linear stores it
    bias = torch.randn(args.out_features)
    weight_t = weight.T.contiguous()  # (in, out)
    rows = []
    for count in args.rows:
        x = torch.randn(count, args.in_features)
        flops = 2 * count * args.in_features * args.out_features
        calls = max(5, args.calls * 16 // count)
        for layout, work in (("F.linear (x @ W.T view)", lambda: F.linear(x, weight, bias)),  # noqa: B023 (used at once)
                             ("addmm with contiguous W^T", lambda: torch.addmm(bias, x, weight_t))):  # noqa: B023
            micro = best_microseconds(work, calls)
            rows.append({"rows": count, "layout": layout, "µs/call": round(micro, 1),
                         "GFLOP/s": round(flops / micro / 1e3, 1)})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"x (rows, {args.in_features}) times a ({args.in_features} -> {args.out_features}) weight")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
