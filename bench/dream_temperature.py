"""Benchmark: which dream temperature, chosen on a criterion the chapter "Dreams" does not report.

The dreams' findings (Fréchet distances, melodies, phone durations, probes, retrieval along the dream) are measured
on the *test* split; the temperature must not be tuned on them, there or anywhere.  The criterion here is how fast
the sound moves: the mean log-mel distance between consecutive tokens of a dream, against that of the real
continuations (:func:`wmlib.analysis.coherence.temperature_criterion`), on held-out windows of the *validation*
split of the clean generated corpus.  A dream that moves too slowly freezes (it holds one sound); too fast, it
jumps between unrelated tokens.  The temperature with the smallest gap is the one to put in
``wmlib.analysis.dreams.DEFAULT_TEMPERATURE``.

    .venv/bin/python bench/dream_temperature.py [--profile default] [--windows 60] [--temperatures 0.05 0.1 ...]

Needs the book's default model (``make book`` or ``python -m wmlib train``).  Numbers only; nothing here passes or
fails.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--windows", type=int, default=60, help="validation windows dreamed at each temperature")
    parser.add_argument("--temperatures", nargs="+", type=float, default=[0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pandas as pd

    from wmlib.analysis.coherence import temperature_criterion
    from wmlib.analysis.dreams import DEFAULT_TEMPERATURE, CandidateBank
    from wmlib.analysis.representations import model_context
    from wmlib.data.features import load_tokens
    from wmlib.model.checkpoints import load_model
    from wmlib.model.evaluate import GENERATED, Windows
    from wmlib.model.runs import locate_model

    started = time.perf_counter()
    _, directory = locate_model(None, args.profile)
    tokens = load_tokens(args.profile, progress=False)
    length = model_context(directory) or 64
    windows = Windows.from_tokens(tokens, "valid", length, max_windows=args.windows, seed=args.seed, where=GENERATED,
                                  stride=length // 2)
    model, _ = load_model(directory)
    bank = CandidateBank.from_tokens(model, tokens, seed=args.seed)
    table = temperature_criterion(model, windows, length // 2, args.temperatures, bank, seed=args.seed,
                                  window=model_context(directory))
    with pd.option_context("display.width", 200):
        print(f"{len(windows.mel)} validation windows, {length // 2} tokens observed, {length - length // 2} dreamed; "
              f"{time.perf_counter() - started:.0f} s\n")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    chosen = float(table.loc[table["chosen"], "temperature"].iloc[0])
    print(f"\nchosen: T = {chosen:g} (DEFAULT_TEMPERATURE is {DEFAULT_TEMPERATURE:g})")


if __name__ == "__main__":
    main()
