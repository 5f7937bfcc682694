"""Probe benchmark: tokens probed per second by each probe, and the probe time of each probing chapter.

Part 1 fits each probe of ``wmlib.analysis.probes.make_probe`` on synthetic tokens (a planted signal in Gaussian
features of the sizes the book probes: 256 dims like the world model's feature, 1024 like the stacked log-mel) and
prints training tokens per second of fitting.  Part 2 runs the probe calls of the chapters "Pitch and energy" and
"Phones, sources and voices" on the profile's study (representations are loaded first and timed apart: cached after
the first run) and prints the seconds of each, and their total against the issue's 3-minute budget.

    python bench/probe_bench.py                  # the book's profile (default): a few minutes
    python bench/probe_bench.py --profile tiny   # seconds (the tests run this)
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def synthetic(tokens: int, dims: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, tokens)
    features = rng.normal(size=(tokens, dims)).astype(np.float32)
    features[:, :classes] += 2.0 * np.eye(classes)[labels]
    return features, labels.astype(str), features[:, 0] * 3 + rng.normal(size=tokens)


def throughput(tokens: int, dims_list, classes: int) -> None:
    from wmlib.analysis.probes import fit_quietly, make_probe

    print(f"Probe fitting, {tokens} training tokens ({classes} classes for classification)")
    print(f"{'probe':<12}{'kind':<16}{'dims':>6}{'fit s':>9}{'tokens/s':>11}")
    for dims in dims_list:
        features, labels, values = synthetic(tokens, dims, classes)
        for probe in ("linear", "mlp", "supervised"):
            for kind, target in (("regression", values), ("classification", labels)):
                start = time.perf_counter()
                fit_quietly(make_probe(probe, kind, 0), features, target)
                seconds = time.perf_counter() - start
                print(f"{probe:<12}{kind:<16}{dims:>6}{seconds:>9.2f}{tokens / seconds:>11,.0f}")


def chapters(profile: str, seeds: int = 3) -> None:
    from wmlib.analysis import probing
    from wmlib.analysis.targets import PHONE_TARGETS, PITCH_TARGETS

    start = time.perf_counter()
    study = probing.ProbeStudy.load(profile)
    print(f"\nProbe study ({profile}): {len(study.tokens.mel):,} tokens, {len(study.features)} representations; "
          f"loading {time.perf_counter() - start:.1f} s (representations {study.seconds['representations']:.1f} s, "
          f"acoustic units {study.seconds['types']:.1f} s)")
    workloads = {
        "pitch and energy": [
            ("table", lambda: study.run(PITCH_TARGETS, seeds=tuple(range(seeds)))),
            ("one hidden layer", lambda: study.run(["pitch_music", "pitch_speech"],
                                                   rows=["log-mel", "world model: feature", "random init"],
                                                   probe="mlp", seeds=(0,), supervised=False)),
            ("other models", lambda: study.run(["pitch_music", "pitch_speech", "energy"], seeds=(0,),
                                               rows=study.comparison_rows, supervised=False)),
            ("along training", lambda: probing.along_training(study, ["pitch_music", "pitch_speech", "energy"])),
            ("along the horizon", lambda: probing.along_horizon(study, ["pitch_music", "energy"]))],
        "phones, sources and voices": [
            ("table (with controls and MDL)",
             lambda: study.run(PHONE_TARGETS, control=("phone", "phone_class"), mdl=("phone", "phone_class"),
                               seeds=tuple(range(seeds)))),
            ("one hidden layer", lambda: study.run(["phone", "voice"], probe="mlp", seeds=(0,), supervised=False,
                                                   rows=["random init", "log-mel", "MFCC", "world model: feature"])),
            ("other models", lambda: study.run(["phone", "source", "voice"], rows=study.comparison_rows, seeds=(0,),
                                               supervised=False)),
            ("confusion matrix", lambda: probing.confusion(study, "world model: feature", "phone_class")),
            ("along training", lambda: probing.along_training(study, ["phone", "source", "voice"])),
            ("along the horizon", lambda: probing.along_horizon(study, ["phone_class", "source"]))],
    }
    total = 0.0
    print(f"{'chapter':<28}{'probes':<32}{'seconds':>9}{'tokens probed/s':>17}")
    for chapter, jobs in workloads.items():
        chapter_total = 0.0
        for name, job in jobs:
            start = time.perf_counter()
            result = job()
            seconds = time.perf_counter() - start
            probed = int(result["tokens"].where(result["setting"] == "in-distribution").sum()) \
                if "tokens" in getattr(result, "columns", []) else 0
            rate = f"{probed / seconds:,.0f}" if probed else "-"
            print(f"{chapter:<28}{name:<32}{seconds:>9.1f}{rate:>17}")
            chapter_total += seconds
        print(f"{chapter:<28}{'total':<32}{chapter_total:>9.1f}")
        total += chapter_total
    print(f"both chapters: {total:.1f} s = {total / 60:.2f} min (budget 3 min; cpu count {os.cpu_count()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--tokens", type=int, default=2000, help="training tokens of the synthetic rows")
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--no-chapters", action="store_true", help="only the synthetic rows")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the chapters' tables (the book: 3)")
    args = parser.parse_args()
    throughput(args.tokens, args.dims, args.classes)
    if not args.no_chapters:
        chapters(args.profile, args.seeds)


if __name__ == "__main__":
    main()
