"""Command line: ``python -m wmlib corpus --profile tiny`` (``--help`` lists the commands)."""
from __future__ import annotations

import argparse
import sys

from .profiles import PROFILES, UnknownProfileError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    corpus = commands.add_parser("corpus", help="generate (or reuse) the embedded corpus of a profile")
    corpus.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)} (default: $WMLIB_PROFILE or default)")
    corpus.add_argument("--force", action="store_true", help="rebuild even if the cache matches")
    features = commands.add_parser("features", help="compute (or reuse) the tokens and labels of a profile")
    features.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)}")
    from .train import add_train_arguments

    train = commands.add_parser("train", help="train a world model (resumes an interrupted run)")
    add_train_arguments(train)
    evaluate = commands.add_parser("evaluate", help="next-token retrieval of trained runs against the baselines")
    evaluate.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)}")
    evaluate.add_argument("--runs", nargs="+", default=None, metavar="NAME",
                          help="run names under <data>/<profile>/runs/, run directories or checkpoints/step-* "
                               "directories (default: the book's models)")
    evaluate.add_argument("--horizons", nargs="+", type=int, default=[1, 2, 4, 8])
    book = commands.add_parser("book", help="train the book's models (once), execute every chapter, build the HTML")
    book.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)}")
    book.add_argument("--builder", default="html", help="a Jupyter Book builder: html, singlehtml, ...")
    args = parser.parse_args(argv)

    try:
        if args.command == "corpus":
            from .corpus import build_corpus, build_info

            corpus = build_corpus(args.profile, force=args.force)
            info = build_info(corpus.name)
            print(corpus.summary().to_string(index=False))
            print(f"{corpus.name}: {info['audio_minutes']:.1f} min of audio in {corpus.root} "
                  f"(built in {info['build_seconds']:.1f} s)")
        elif args.command == "features":
            from .features import load_tokens

            tokens = load_tokens(args.profile)
            print(f"{len(tokens.labels)} tokens of shape {tokens.mel.shape[1:]} from {tokens.labels['utt_id'].nunique()} utterances")
        elif args.command == "train":
            from .train import run_from_args

            return run_from_args(args)
        elif args.command == "evaluate":
            from pathlib import Path

            from .corpus import corpus_dir
            from .evaluate import evaluate_runs
            from .profiles import get_profile

            from .runs import BOOK_MODELS, DEFAULT_MODEL

            runs_root = corpus_dir(get_profile(args.profile)).parent / "runs"
            names = args.runs or BOOK_MODELS
            run_dirs = {Path(name).name: (Path(name) if Path(name).is_dir() else runs_root / name) for name in names}
            control = DEFAULT_MODEL if DEFAULT_MODEL in run_dirs else "all"
            table = evaluate_runs(args.profile, run_dirs, tuple(args.horizons), random_init=control)
            print(table.round(3).to_string(index=False))
        elif args.command == "book":
            from .book import build_book

            build_book(args.profile, builder=args.builder)
    except UnknownProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
