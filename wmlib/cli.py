"""The command line, ``python -m wmlib COMMAND`` (``--help`` lists the commands, ``COMMAND --help`` their options).

    corpus     generate (or reuse) the embedded corpus of a profile
    features   compute (or reuse) its log-mel tokens and per-token labels
    train      train a world model: a named model of the book, or one of your own (resumes an interrupted run)
    evaluate   next-token retrieval of trained models against the baselines
    encode     per-token latents of every part of a trained model for an audio file of your own
    sparse-features
               train (or load) the sparse dictionaries of a trained model's state and its controls; their quality
               and how many of their features match a label
    book       train the book's models (once), execute every chapter, build the HTML

Errors a user can fix (a missing file, an unknown name, a run not trained yet) print one line naming the fix and
exit with status 2, without a traceback.  Every command imports what it needs only when it runs, so ``--help``
answers without loading torch.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from wmlib.data.profiles import PROFILES

PROFILE_HELP = f"corpus profile: {', '.join(PROFILES)} (default: $WMLIB_PROFILE or default)"


def parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    main = argparse.ArgumentParser(prog="python -m wmlib",
                                   description="A world model for audio: corpus, training, evaluation, your own audio, "
                                               "the book.",
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Run `python -m wmlib COMMAND --help` for a command's options.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    corpus = commands.add_parser("corpus", help="generate (or reuse) the embedded corpus of a profile")
    corpus.add_argument("--profile", default=None, help=PROFILE_HELP)
    corpus.add_argument("--force", action="store_true", help="rebuild even if the cache matches")
    features = commands.add_parser("features", help="compute (or reuse) the tokens and labels of a profile")
    features.add_argument("--profile", default=None, help=PROFILE_HELP)
    train = commands.add_parser("train", help="train a world model (resumes an interrupted run)")
    add_train_arguments(train)
    evaluate = commands.add_parser("evaluate", help="next-token retrieval of trained runs against the baselines")
    evaluate.add_argument("--profile", default=None, help=PROFILE_HELP)
    evaluate.add_argument("--runs", nargs="+", default=None, metavar="NAME",
                          help="run names under <data>/<profile>/runs/, run directories or checkpoints/step-* "
                               "directories (default: the book's models)")
    evaluate.add_argument("--horizons", nargs="+", type=int, default=[1, 2, 4, 8])
    encode = commands.add_parser(
        "encode", help="per-token latents of a trained model for an audio file of your own",
        description="Encode an audio file (WAV, FLAC, OGG, MP3; any sample rate and channel count, converted to "
                    "16 kHz mono) with a trained model: per-token latents of every part of the model, with their "
                    "timestamps in milliseconds, written to an .npz file.")
    encode.add_argument("audio", metavar="AUDIO_FILE", help="the recording to encode (any length)")
    encode.add_argument("--model", default=None, metavar="NAME",
                        help="a named model (default: the book's default model), a run directory or a "
                             "checkpoints/step-* directory")
    encode.add_argument("--profile", default=None, help=f"the profile the named model was trained on; {PROFILE_HELP}")
    encode.add_argument("--context", type=int, default=None, metavar="TOKENS",
                        help="the most tokens the transformer reads at once; longer audio is read in windows of this "
                             "length overlapping by half (default: the window it was trained on, 64 tokens = 2.56 s "
                             "for the book's models; at most 511)")
    encode.add_argument("-o", "--output", default=None, metavar="OUT.npz",
                        help="where to write the latents (default: AUDIO_FILE with the suffix .latents.npz)")
    dream = commands.add_parser(
        "dream", help="observe the start of an audio file of your own, then let a trained model imagine the rest",
        description="Observe the first --context-seconds of a recording, then imagine --seconds more, open-loop. "
                    "Writes context + dream as a WAV file (both through the same mel inversion, so the boundary is "
                    "not a change of sound quality), one file per sample.")
    dream.add_argument("audio", metavar="AUDIO_FILE", help="the recording whose start is the context")
    dream.add_argument("--context-seconds", type=float, default=2.0, help="seconds observed (default 2)")
    dream.add_argument("--seconds", type=float, default=2.0, help="seconds imagined (default 2)")
    dream.add_argument("--temperature", type=float, default=None,
                       help="0: the model's most likely continuation; 1: its own distribution, which for the default "
                            "model is too flat to stay in key (default 0.1, see the chapter 'Dreams')")
    dream.add_argument("--samples", type=int, default=1, help="dreams to write (default 1)")
    dream.add_argument("--seed", type=int, default=0, help="the same seed gives the same dreams (default 0)")
    dream.add_argument("--model", default=None, metavar="NAME",
                       help="a named model (default: the book's default model) or a run directory")
    dream.add_argument("--profile", default=None, help=f"the profile the named model was trained on; {PROFILE_HELP}")
    dream.add_argument("-o", "--output", default=None, metavar="OUT.wav",
                       help="where to write (default: AUDIO_FILE with the suffix .dream.wav); further samples get "
                            "-2, -3, ... before the suffix")
    sparse = commands.add_parser(
        "sparse-features", help="train (or load) the sparse dictionaries of a model and its controls, and label them",
        description="Train (once; cached under <data>/<profile>/sparse/) TopK sparse autoencoders on a trained model's "
                    "per-token state, on the stacked log-mel and on the model at random initialisation (two seeds "
                    "each), label every feature from the corpus's labels, and print their quality and the share of "
                    "features that match a label (the chapter 'Sparse features').")
    sparse.add_argument("--model", default=None, metavar="NAME",
                        help="a named model (default: the book's default model) or a run directory")
    sparse.add_argument("--profile", default=None, help=f"the profile the model was trained on; {PROFILE_HELP}")
    sparse.add_argument("--part", default="feature",
                        help="the model's per-token state to read: feature (default), context, encoder or prior")
    sparse.add_argument("--features", type=int, default=None, metavar="N",
                        help="dictionary size (default: 4 times the model's state width)")
    sparse.add_argument("--top-k", type=int, default=None, metavar="K",
                        help="active features per token (default: 16; 4 under the tiny profile)")
    sparse.add_argument("--epochs", type=int, default=None, help="training epochs (default: 6)")
    sparse.add_argument("-o", "--output", default=None, metavar="OUT.csv",
                        help="also write every feature's label, threshold, F1, precision and recall to a CSV file")
    figures = commands.add_parser(
        "figures", help="regenerate every figure of a chapter as HTML, JSON and PNG files",
        description="Execute one chapter as the book does and write each figure it shows to DIR: "
                    "<chapter>-<nn>.html (interactive, offline), .json (plotly.io.read_json) and .png (through "
                    "Kaleido and a local Chromium; skipped with a note when there is none).")
    figures.add_argument("--chapter", required=True, metavar="NAME",
                         help="a chapter's number, name or file: 7, dreams, 07_dreams")
    figures.add_argument("--out", required=True, metavar="DIR", help="the folder to write into")
    figures.add_argument("--profile", default=None, help=PROFILE_HELP)
    figures.add_argument("--no-png", action="store_true", help="HTML and JSON only")
    findings = commands.add_parser("findings", help="print the book's headline findings from a build",
                                   description="The findings table of the book's front page, as the last build "
                                               "computed it (read from the glued numbers of each chapter).")
    findings.add_argument("--build", default=None, metavar="DIR",
                          help="the build folder (default: _build of the book)")
    book = commands.add_parser("book", help="train the book's models (once), execute every chapter, build the HTML")
    book.add_argument("--profile", default=None, help=PROFILE_HELP)
    book.add_argument("--builder", default="html", help="a Jupyter Book builder: html, singlehtml, ...")
    return main


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m wmlib train``."""
    from wmlib.model.models import ARCHITECTURES, DYNAMICS, OBJECTIVES, SIZES
    from wmlib.model.runs import DEFAULT_MODEL, MODELS, TRAINING

    book = TRAINING["default"]
    default_kind = MODELS[DEFAULT_MODEL]
    parser.add_argument("--profile", default=None, help=PROFILE_HELP)
    parser.add_argument("--model", default=None, metavar="NAME",
                        help=f"a named model ({', '.join(MODELS)}: the book's settings for the profile), or the name "
                             "of a run of your own set by the options below (default: the book's default model, "
                             f"{DEFAULT_MODEL}, or <dynamics>-<objective> when you change one); the run lives in "
                             "<data>/<profile>/runs/<NAME>")
    parser.add_argument("--preset", default=None, choices=sorted(SIZES), help="model sizes (default: the profile's)")
    parser.add_argument("--architecture", default=None, choices=ARCHITECTURES,
                        help="world_model (default), or masked_autoencoder (the reconstruction control)")
    parser.add_argument("--dynamics", default=None, choices=DYNAMICS,
                        help=f"world-model dynamics (default: {default_kind['dynamics']}, as the book's default model)")
    parser.add_argument("--objective", default=None, choices=OBJECTIVES,
                        help=f"training objective (default: {default_kind['objective']})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimizer steps in all (default: the profile's; {book['steps']} for default)")
    parser.add_argument("--seed", type=int, default=None, help="default: 0")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"global batch, all processes (default: the profile's; {book['batch_size']} for default)")
    parser.add_argument("--seq-len", type=int, default=None,
                        help=f"tokens per window, 25 a second (default: the profile's; {book['seq_len']} for default)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default: the profile's; {book['lr']} for default)")
    parser.add_argument("--schedule", default=None, choices=("cosine", "constant"), help="default: cosine")
    parser.add_argument("--augment", action="store_true",
                        help="perturb every training window anew in the log-mel domain (wmlib.data.mel_augment)")
    parser.add_argument("--dropout", type=float, default=None, help="dropout of the transformer (default: 0)")
    parser.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default: 0.01)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the loss (faster steps after a one-off compile; see bench/README.md)")
    parser.add_argument("--run-dir", default=None,
                        help="where to write the run (default: <data>/<profile>/runs/<name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """The :class:`wmlib.model.train.TrainConfig` of parsed ``train`` arguments.

    A named model (``--model`` one of :data:`wmlib.model.runs.MODELS`, or model options that match one) takes the
    book's settings for the profile, with any training option given on top; with no model option at all that is
    the book's default model.  Any other name or combination is a run of your own
    (:func:`wmlib.model.runs.custom_run_config`): the default model's kind and the profile's training settings,
    with your options on top.
    """
    from wmlib.model.runs import DEFAULT_MODEL, MODELS, custom_run_config, model_settings, run_config

    training = {key: getattr(args, key) for key in ("steps", "seed", "batch_size", "seq_len", "lr", "schedule",
                                                    "weight_decay") if getattr(args, key) is not None}
    if args.augment:
        training["augment"] = {}
    if args.compile:
        training["compile"] = True
    overrides = {key: getattr(args, key) for key in ("architecture", "dynamics", "objective", "dropout")
                 if getattr(args, key) is not None}
    kind = {**MODELS[DEFAULT_MODEL], **overrides}
    derived = ("masked-autoencoder" if kind.get("architecture") == "masked_autoencoder"
               else f"{kind['dynamics']}-{kind['objective']}")
    name = args.model or derived
    if name in MODELS:
        from wmlib.model.models import ModelConfig

        named = ModelConfig(**{**model_settings(args.profile), **MODELS[name]})
        if args.preset or any(getattr(named, key) != value for key, value in overrides.items()):
            raise ValueError(f"--model {name} is a named model ({MODELS[name]}, the profile's preset); give a run of "
                             "your own another --model name to change its model options")
        return run_config(name, args.profile, **training)
    return custom_run_config(name, args.profile, overrides, preset=args.preset, **training)


class UsageError(Exception):
    """A mistake the user can fix; :func:`main` prints it as one line and exits with status 2."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is kept; run the same command again to continue", file=sys.stderr)
        return 130
    except Exception as error:
        if not is_usage_error(error, args.command):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def is_usage_error(error: Exception, command: str) -> bool:
    """Whether ``error`` is one the user can fix from its message alone (printed as one line, status 2)."""
    from wmlib.data.audio import AudioError
    from wmlib.data.profiles import UnknownProfileError

    if isinstance(error, (UsageError, UnknownProfileError, AudioError)):
        return True
    if command in ("train", "evaluate", "encode", "dream"):  # these have imported the model stage already
        from wmlib.model.checkpoints import CheckpointError
        from wmlib.model.encode import ContextError
        from wmlib.model.runs import UnknownModelError

        if command == "dream":
            from wmlib.analysis.dreams import DreamError

            if isinstance(error, DreamError):
                return True
        return isinstance(error, (CheckpointError, UnknownModelError, ContextError)) or (
            command == "train" and isinstance(error, ValueError))
    return False


def _corpus(args) -> None:
    from wmlib.data.corpus import build_corpus, build_info

    corpus = build_corpus(args.profile, force=args.force)
    info = build_info(corpus.name)
    print(corpus.summary().to_string(index=False))
    print(f"{corpus.name}: {info['audio_minutes']:.1f} min of audio in {corpus.root} "
          f"(built in {info['build_seconds']:.1f} s)")


def _features(args) -> None:
    from wmlib.data.features import load_tokens

    tokens = load_tokens(args.profile)
    print(f"{len(tokens.labels)} tokens of shape {tokens.mel.shape[1:]} from {tokens.labels['utt_id'].nunique()} "
          "utterances")


def _train(args) -> None:
    from wmlib.model.checkpoints import METRICS_FILE, read_metric_lines
    from wmlib.model.train import is_main_process, train

    config = config_from_args(args)
    run_dir = train(config, args.run_dir, progress=not args.no_progress)
    if is_main_process():
        rows = read_metric_lines(run_dir / METRICS_FILE)
        last = f", loss {rows[-1]['loss']:.4f} at step {rows[-1]['step']}" if rows else ""
        print(f"{config.name}: {run_dir}{last}")


def _evaluate(args) -> None:
    from wmlib.model.evaluate import evaluate_runs
    from wmlib.model.runs import BOOK_MODELS, DEFAULT_MODEL, locate_model

    run_dirs = dict(locate_model(name, args.profile) for name in args.runs or BOOK_MODELS)
    control = DEFAULT_MODEL if DEFAULT_MODEL in run_dirs else "all"
    table = evaluate_runs(args.profile, run_dirs, tuple(args.horizons), random_init=control)
    print(table.round(3).to_string(index=False))


def _encode(args) -> None:
    from pathlib import Path

    from wmlib.data.audio import AudioConversionWarning, load_audio
    from wmlib.model.encode import encode

    path = Path(args.audio)
    output = Path(args.output) if args.output else path.with_name(path.name + ".latents.npz")
    if output.suffix != ".npz":
        raise UsageError(f"{output}: the output is an .npz file; give -o with a name ending in .npz")
    with warnings.catch_warnings(record=True) as caught:  # conversions are reported as one note each, not a trace
        warnings.simplefilter("always", AudioConversionWarning)
        audio = load_audio(path)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    encoding = encode(audio, model=args.model, profile=args.profile, context=args.context)
    encoding.save(output)
    print(f"{path}: {encoding.summary()} -> {output}")


def _dream(args) -> None:
    from pathlib import Path

    import soundfile as sf

    from wmlib.analysis.dreams import DEFAULT_TEMPERATURE, dream_audio
    from wmlib.data.audio import SAMPLE_RATE, AudioConversionWarning, load_audio
    from wmlib.data.features import tokens_to_audio
    from wmlib.data.files import atomic_write

    path = Path(args.audio)
    output = Path(args.output) if args.output else path.with_name(path.stem + ".dream.wav")
    if output.suffix.lower() != ".wav":
        raise UsageError(f"{output}: the output is a WAV file; give -o with a name ending in .wav")
    if args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioConversionWarning)
        audio = load_audio(path)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    dreams, info = dream_audio(audio, SAMPLE_RATE, args.context_seconds, args.seconds, args.model, args.profile,
                               temperature, args.samples, args.seed, name=str(path))
    for sample in range(args.samples):
        target = output if sample == 0 else output.with_name(f"{output.stem}-{sample + 1}{output.suffix}")
        with atomic_write(target) as handle:
            sf.write(handle, tokens_to_audio(dreams.sequence(0, sample)), SAMPLE_RATE, format="WAV")
        print(f"{path}: {info['context_tokens']} tokens observed, {info['horizon']} dreamed by {info['model']} "
              f"({info['method']}, temperature {temperature:g}, seed {args.seed}) -> {target}")


def _sparse_features(args) -> None:
    from dataclasses import replace

    from wmlib.analysis.sparse.study import BOOK_CONFIG, TINY_CONFIG, SparseFeaturesError, sparse_features
    from wmlib.data.profiles import get_profile

    base = TINY_CONFIG if get_profile(args.profile).name == "tiny" else BOOK_CONFIG
    changes = {key: value for key, value in (("features", args.features), ("top_k", args.top_k),
                                             ("epochs", args.epochs)) if value is not None}
    if any(value < 1 for value in changes.values()):
        raise UsageError(f"--features, --top-k and --epochs must be positive, got {changes}")
    try:
        study = sparse_features(args.profile, args.model, args.part, replace(base, **changes), progress=True)
    except SparseFeaturesError as error:
        raise UsageError(str(error)) from error
    print(study.quality_table().round(3).to_string(index=False))
    print()
    print(study.interpretability_table().round(3).drop(columns=["families"]).to_string(index=False))
    if args.output:
        from wmlib.data.files import atomic_write

        table = study.rows["world model"].features
        with atomic_write(args.output, "w") as handle:
            table.to_csv(handle, index=False)
        print(f"{len(table)} features of the model's dictionary -> {args.output}")


def _figures(args) -> None:
    from wmlib.book.figures import FigureExportError, export_figures

    try:
        written = export_figures(args.chapter, args.out, args.profile, png=not args.no_png)
    except FigureExportError as error:
        raise UsageError(str(error)) from error
    kinds = sorted({path.suffix for path in written})
    print(f"{len({path.stem for path in written})} figures ({', '.join(kinds)}) -> {args.out}")


def _findings(args) -> None:
    from wmlib.book.build import BOOK_ROOT
    from wmlib.book.findings import glued_findings

    try:
        table = glued_findings(args.build or BOOK_ROOT / "_build")
    except FileNotFoundError as error:
        raise UsageError(str(error)) from error
    print("| finding | " + " | ".join(table.columns) + " |\n|" + "---|" * (len(table.columns) + 1))
    for name, row in table.iterrows():
        print(f"| {name} | " + " | ".join(row) + " |")


def _book(args) -> None:
    from wmlib.book.build import build_book

    build_book(args.profile, builder=args.builder)


COMMANDS = {"corpus": _corpus, "features": _features, "train": _train, "evaluate": _evaluate, "encode": _encode,
            "sparse-features": _sparse_features,
            "dream": _dream, "figures": _figures, "findings": _findings, "book": _book}
