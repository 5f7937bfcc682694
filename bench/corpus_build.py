"""Benchmark: build the embedded corpus and its tokens from scratch, per profile, and print a table.

    .venv/bin/python bench/corpus_build.py [--profiles tiny default]

Builds into a temporary folder (the repository's caches are untouched) and reports wall time, minutes of audio
per domain (generated, randomized copies, real recordings), the seconds each part took, the real-time factor
(seconds of audio made per second of wall time) and the tokenisation throughput.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["tiny", "default"])
    parser.add_argument("--no-tokens", action="store_true", help="time the corpus only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wmlib-bench-") as folder:
        os.environ["WMLIB_DATA"] = folder  # before importing wmlib's builders: fresh caches
        from wmlib.data.corpus import build_corpus, build_info
        from wmlib.data.features import load_tokens

        for name in args.profiles:
            start = time.perf_counter()
            corpus = build_corpus(name, progress=False)
            corpus_seconds = time.perf_counter() - start
            info = build_info(name)
            audio_seconds = corpus.utterances["duration_s"].sum()
            row = {"profile": name, "audio min": round(audio_seconds / 60, 1),
                   **{f"{k} %": round(100 * corpus.utterances.query("source == @k")["duration_s"].sum() / audio_seconds)
                      for k in ("speech", "music", "noise")},
                   **{f"{k} min": v for k, v in info["minutes_per_domain"].items()},
                   "corpus build s": round(corpus_seconds, 1),
                   "corpus x real time": round(audio_seconds / corpus_seconds),
                   **{f"{k} s": v for k, v in info["seconds_per_source"].items()}}
            if not args.no_tokens:
                start = time.perf_counter()
                tokens = load_tokens(name, progress=False)
                token_seconds = time.perf_counter() - start
                row |= {"tokens": len(tokens.labels), "tokenise s": round(token_seconds, 1),
                        "tokens/s": round(len(tokens.labels) / token_seconds)}
            rows.append(row)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
