"""Benchmark: how the sparse dictionary's settings change what the chapter "Sparse features" reports.

For each setting (dictionary size as a multiple of the state's width, active features per token, epochs, training
tokens), two seeds of the TopK autoencoder are trained on one representation (the default model's ``feature`` by
default, or ``log-mel`` / ``random init``) and measured as the chapter measures them: variance explained and dead
features on held-out tokens, seed stability (share of features whose best decoder cosine with the other seed exceeds
0.7), the share of features matching a label (held-out F1 ≥ 0.5), and the training time of one dictionary.

    .venv/bin/python bench/sparse_dictionary.py [--profile default] [--row "world model"]
        [--settings 4x16x6x32000 4x16x20x32000 ...]      # expansion x top_k x epochs x training tokens

Needs the book's default model (``make book`` or ``python -m wmlib train``).  Numbers only; nothing here passes or
fails.  Writes ``bench/results/sparse_dictionary.csv`` with ``--csv``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_SETTINGS = ["4x16x6x32000", "4x16x20x32000", "4x16x6x120000", "2x16x20x32000", "8x16x20x32000",
                    "4x8x20x32000", "4x32x20x32000"]


def parse(setting: str) -> tuple[int, int, int, int]:
    parts = setting.lower().split("x")
    if len(parts) != 4 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise SystemExit(f"a setting is expansion x top_k x epochs x tokens, e.g. 4x16x6x32000; got {setting!r}")
    return tuple(int(part) for part in parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--row", default="world model", help="world model, log-mel or random init")
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, type=str)
    parser.add_argument("--csv", action="store_true", help="write bench/results/sparse_dictionary.csv")
    args = parser.parse_args()
    settings = [parse(setting) for setting in args.settings]

    from dataclasses import replace

    import pandas as pd

    from wmlib.analysis.representations import baseline_representations, model_representations
    from wmlib.analysis.sparse.dictionary import train_dictionary
    from wmlib.analysis.sparse.labelling import MATCH_F1, label_features
    from wmlib.analysis.sparse.quality import quality, stability
    from wmlib.analysis.sparse.study import BOOK_CONFIG, ROWS, TINY_CONFIG, TOKENS, balanced_utterances, sparse_features

    if args.row not in ROWS:
        raise SystemExit(f"--row must be one of {', '.join(ROWS)}")
    started = time.perf_counter()
    study = sparse_features(args.profile)  # the chapter's tokens, labels and (cached) dictionaries
    base = TINY_CONFIG if study.profile == "tiny" else BOOK_CONFIG
    tokens = study.tokens
    width = study.rows[ROWS[0]].train_x.shape[1]
    rows = []
    for expansion, top_k, epochs, budget in settings:
        if budget > TOKENS.get(study.profile, TOKENS["default"])[0]:  # more training tokens than the chapter's
            train = balanced_utterances(tokens, ("train",), budget, seed=0)
        else:
            train = study.train
        if args.row == "log-mel":
            train_x = baseline_representations(train)["log-mel"]
        else:
            run = study.run if args.row == ROWS[0] else study.run / "checkpoints" / "step-000000"
            train_x = model_representations(run, train, study.profile)[study.part]
        config = replace(base, expansion=expansion, top_k=top_k, epochs=epochs, max_tokens=budget)
        clock = time.perf_counter()
        first = train_dictionary(train_x, config, expansion * width, seed=0)
        seconds = time.perf_counter() - clock
        second = train_dictionary(train_x, config, expansion * width, seed=1)
        test_x = study.rows[args.row].test_x
        test_codes = first.encode(test_x)
        measured = quality(first, test_x, test_codes)
        train_codes = first.encode(study.rows[args.row].train_x)  # thresholds chosen on the chapter's tokens
        features = label_features(train_codes, study.train_labels, test_codes, study.test_labels)
        alive = (train_codes > 0).any(axis=0)
        rows.append({"setting": f"{expansion}x{top_k}x{epochs}x{budget}", "features": first.features,
                     "top_k": top_k, "epochs": epochs, "train tokens": len(train_x),
                     "variance explained": measured["variance_explained"], "dead": measured["dead"],
                     **stability(first, second, alive),
                     "matched share": float((features["f1"] >= MATCH_F1).mean()),
                     "seconds per dictionary": seconds})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{args.row}'s {study.part}, {study.profile} profile, width {width}; the chapter's setting: "
          f"{base.expansion}x{base.top_k}x{base.epochs}x{base.max_tokens} ({time.perf_counter() - started:.0f} s)")
    print(table.round(3).to_string(index=False))
    if args.csv:
        path = Path(__file__).parent / "results" / "sparse_dictionary.csv"
        table.assign(row=args.row, profile=study.profile).round(4).to_csv(path, index=False)
        print(f"-> {path}")


if __name__ == "__main__":
    main()
