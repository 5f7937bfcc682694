"""Benchmark: does longer training help?  Held-out top-1 along training, recipe by recipe, with paired differences.

    .venv/bin/python bench/data_curve.py [--recipes before wide+regularised ...] [--steps 8000]
                                         [--keep 1300 2600 4000 8000] [--finished 1300] [--evaluate-only]

Each recipe (:data:`RECIPES`: a corpus and the levers against memorising) trains the book's default model
(transformer, contrastive, the default profile's batch, learning rate and warm-up) on one cosine schedule of
``--steps``, keeping checkpoints at ``--keep``; ``--finished`` also trains complete shorter schedules (a
checkpoint in the middle of a long schedule is not a finished model: its learning rate is still high).  Runs are
resumable and a finished run is found, not retrained (``<data>/default/runs/curve-<recipe>-<steps>``).

Then every checkpoint is scored on the *current* default corpus's evaluation sets (real telephone speech, real
spoken words and real music held out of training, the generated test split), top-1 of 256 at horizons 1 and 2,
with the same queries for every checkpoint and baseline, and compared by paired differences over utterances:
each recipe's last checkpoint against its first and against the finished short run, each against the
baselines, and every recipe against the first recipe's finished short run.  Prints the curve (recipe × step ×
set), the training loss at each kept step (on the recipe's own, perhaps perturbed, windows: comparable along one
curve, not across recipes) and the paired verdicts; writes them as CSV under ``--out``.  Numbers only; nothing
here passes or fails.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

from wmlib.analysis.learning_curve import BASELINES, checkpoint_label, curve_differences, curve_pivot, learning_curve
from wmlib.data.features import load_tokens
from wmlib.data.profiles import ASTERISK_SPEAKERS, INSTRUMENTS, PROFILES
from wmlib.model.checkpoints import MODEL_FILE, CheckpointError, list_checkpoints, read_metrics, read_safetensors
from wmlib.model.runs import custom_run_config, runs_root
from wmlib.model.train import train

# The book's corpus before it grew (no KTuberling words, no MuseScore timbres): the recipe the model overfitted.
BEFORE = dataclasses.replace(
    PROFILES["default"], name="default-before", seconds_music=1540, seconds_real_speech=840,
    instruments=tuple(name for name in INSTRUMENTS if not name.endswith("_musescore")),
    heldout_instruments=("vibraphone_fluidr3", "cello_timgm", "oboe_fluidr3", "harp_freepats"),
    real_speakers=ASTERISK_SPEAKERS, heldout_real=("ru_ivrvoice", "it_menardi", "the_simplicity", "system"))

#: recipe -> (corpus: ``BEFORE`` or None for the profile's own, TrainConfig changes, ModelConfig changes).
#: "regularised": log-mel augmentation on the fly (wmlib.data.mel_augment, its defaults) and dropout 0.1, the
#: book's ``wmlib.model.runs.REGULARISATION``; the other recipes turn both off.
PLAIN, REGULARISED = ({"augment": None}, {"dropout": 0.0}), ({"augment": {}}, {"dropout": 0.1})
RECIPES = {
    "before": (BEFORE, *PLAIN),
    "before+regularised": (BEFORE, *REGULARISED),
    "wide": (None, *PLAIN),
    "wide+regularised": (None, *REGULARISED),
}


def recipe_config(recipe: str, steps: int, keep=(), profile: str = "default"):
    """``(corpus, TrainConfig)`` of a recipe's run of ``steps`` (the profile's other training settings)."""
    corpus, changes, overrides = RECIPES[recipe]
    assert corpus is None or profile == "default", f"recipe {recipe!r} has a corpus of the default profile only"
    config = custom_run_config(f"curve-{recipe}-{steps}", profile, overrides, steps=steps,
                               keep_checkpoints_at=(0, *keep), **changes)
    return corpus or profile, config


def finished(run_dir: Path, steps: int) -> bool:
    try:
        return int(read_safetensors(run_dir / MODEL_FILE)[1].get("step", -1)) >= steps
    except CheckpointError:
        return False


def train_recipe(recipe: str, steps: int, keep, tokens_cache: dict, profile: str, progress: bool = True) -> Path:
    corpus, config = recipe_config(recipe, steps, keep, profile)
    run_dir = runs_root(profile) / config.name
    if not finished(run_dir, steps):
        key = corpus if isinstance(corpus, str) else corpus.name
        if key not in tokens_cache:
            tokens_cache[key] = load_tokens(corpus, progress=False)
        started = time.perf_counter()
        train(config, run_dir, tokens=tokens_cache[key], progress=progress)
        print(f"trained {config.name}: {steps} steps in {(time.perf_counter() - started) / 60:.1f} min")
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", help="training settings and evaluation sets (default)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--keep", nargs="*", type=int, default=[1300, 2600, 4000],
                        help="steps of the long schedule whose checkpoints are scored (its last step always is)")
    parser.add_argument("--finished", nargs="*", type=int, default=[1300],
                        help="complete shorter schedules to train and compare with")
    parser.add_argument("--max-windows", type=int, default=400)
    parser.add_argument("--evaluate-only", action="store_true", help="score the runs there are; train nothing")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", default="bench/results", help="folder for the CSV tables")
    args = parser.parse_args()

    checkpoints, tokens_cache = {}, {}
    for recipe in args.recipes:
        schedules = [(args.steps, [*args.keep, args.steps])] + [(steps, []) for steps in args.finished]
        for steps, keep in schedules:
            _, config = recipe_config(recipe, steps, keep, args.profile)
            run_dir = runs_root(args.profile) / config.name
            if not args.evaluate_only:
                run_dir = train_recipe(recipe, steps, keep, tokens_cache, args.profile, not args.no_progress)
            if not finished(run_dir, steps):
                print(f"{config.name}: not trained to {steps} steps, left out")
                continue
            if keep:
                for step, path in list_checkpoints(run_dir):
                    if step in keep:
                        checkpoints[recipe, step] = path
            else:
                checkpoints[f"{recipe} (finished {steps})", steps] = run_dir
    started = time.perf_counter()
    table, hits = learning_curve(args.profile, checkpoints, tokens=tokens_cache.get(args.profile),
                                 max_windows=args.max_windows)
    print(f"scored {len(checkpoints)} checkpoints in {(time.perf_counter() - started) / 60:.1f} min\n")
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 30):
        print(curve_pivot(table).to_string())
        losses = []
        for (recipe, step), path in checkpoints.items():
            run_dir = path.parent.parent if path.parent.name == "checkpoints" else path
            metrics = read_metrics(run_dir)
            near = metrics[(metrics["step"] > step - 100) & (metrics["step"] <= step)]
            losses.append({"recipe": recipe, "step": step, "training loss (last 100 steps)": near["loss"].mean()})
        print("\n" + pd.DataFrame(losses).to_string(index=False))
        pairs = []
        for recipe in args.recipes:
            kept = sorted(step for name, step in checkpoints if name == recipe)
            if len(kept) >= 2:
                pairs.append((checkpoint_label(recipe, kept[-1]), checkpoint_label(recipe, kept[0])))
            for steps in args.finished:
                short = checkpoint_label(f"{recipe} (finished {steps})", steps)
                if kept:
                    pairs.append((checkpoint_label(recipe, kept[-1]), short))
                pairs += [(short, baseline) for baseline in BASELINES]
            if kept:
                pairs += [(checkpoint_label(recipe, kept[-1]), baseline) for baseline in BASELINES]
        # every recipe against the first one's finished short schedule (the book's model before this work)
        reference = [checkpoint_label(f"{args.recipes[0]} (finished {steps})", steps) for steps in args.finished[:1]]
        for recipe in args.recipes[1:]:
            kept = sorted(step for name, step in checkpoints if name == recipe)
            mine = [checkpoint_label(f"{recipe} (finished {steps})", steps) for steps in args.finished[:1]]
            pairs += [(method, other) for method in mine + [checkpoint_label(recipe, step) for step in kept[-1:]]
                      for other in reference]
        differences = curve_differences(hits, pairs)
        print("\n" + differences.to_string(index=False, float_format=lambda x: f"{x:+.3f}"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "data_curve.csv", index=False)
    differences.to_csv(out / "data_curve_differences.csv", index=False)


if __name__ == "__main__":
    main()
