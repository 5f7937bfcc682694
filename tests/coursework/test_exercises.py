"""The coursework's checks: one per exercise of chapters 3-11 (``coursework/README.md``).

Each exercise is a file ``coursework/<name>.py`` whose ``answer(profile)`` returns a dict of numbers (or, for
``ch10_small_encoder``, an ``encode`` function).  The check runs it on the ``tiny`` profile and compares it with the
answer it computes itself — with the library's lower-level calls or its own loop, never by calling a solution —
within the tolerance stated in the chapter.  By default the checks run the reference solutions in
``coursework/solutions/``; a student runs them on their own files:

    WMLIB_SOLUTIONS=coursework .venv/bin/python -m pytest tests/coursework -k ch05_phone_context

The suite also proves that every check fails on the untouched stub and on a deliberately wrong answer.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "coursework"
SOLUTIONS = Path(os.environ.get("WMLIB_SOLUTIONS", STUBS / "solutions")).resolve()
PROFILE = "tiny"


def load(path: Path):
    """Import one exercise file as a fresh module."""
    if not path.is_file():
        pytest.fail(f"no file {path}: start from the stub in coursework/ (see coursework/README.md)")
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(answer, expected: dict, tolerance: dict) -> None:
    """Every key of ``expected`` in ``answer``: numbers within ``tolerance[key]``, anything else equal."""
    assert isinstance(answer, dict), f"answer() should return a dict with keys {sorted(expected)}, got {answer!r}"
    missing = sorted(set(expected) - set(answer))
    assert not missing, f"the answer lacks {missing}"
    for key, value in expected.items():
        if key in tolerance:
            got = float(answer[key])
            assert np.isfinite(got) and abs(got - value) <= tolerance[key], (
                f"{key}: {got:.4f}, expected {value:.4f} ± {tolerance[key]}")
        else:
            assert answer[key] == value, f"{key}: {answer[key]!r}, expected {value!r}"


# -- what the checks compute themselves (once per test session) ----------------------------------------------------

@functools.cache
def tokens():
    from wmlib import load_tokens

    return load_tokens(PROFILE, progress=False)


@functools.cache
def default_model():
    from wmlib import load_model
    from wmlib.model import runs

    runs.train_book_models(PROFILE, progress=False)  # the tiny book's models: found, or trained once (minutes)
    return load_model(runs.run_dir(runs.DEFAULT_MODEL, PROFILE))[0]


def seq_len() -> int:
    from wmlib.model import runs

    return runs.run_config(runs.DEFAULT_MODEL, PROFILE).seq_len


@functools.cache
def retrieval():
    """Copy-last, a linear AR of 8 tokens and the model, at horizons 1-8 on the same queries (8 tokens of past)."""
    from wmlib.model.evaluate import GENERATED, CopyLast, LinearAutoregression, ModelPredictor, Windows, retrieval_table

    model = default_model()
    train = Windows.from_tokens(tokens(), "train", seq_len(), max_windows=600, seed=0)
    test = Windows.from_tokens(tokens(), "test", seq_len(), where=GENERATED)
    methods = {"copy": CopyLast(), "ar8": LinearAutoregression(order=8).fit(train, (1, 2, 4, 8)),
               "model": ModelPredictor(model)}
    return retrieval_table(test, methods, (1, 2, 4, 8), first=7, seed=0)


def paired_dict(result) -> dict:
    return {"difference": result.difference, "low": result.low, "high": result.high}


def expect_ch03_ar_order() -> dict:
    from wmlib.model.evaluate import paired

    table = retrieval().query("horizon == 1").set_index("method")["top1"]
    return {"model": table["model"], "linear AR (8 tokens)": table["ar8"],
            **paired_dict(paired(retrieval(), "model", "ar8", 1))}


def expect_ch03_horizon() -> dict:
    """The model against copying, with 3 tokens of past (the first query of the chapter's tables)."""
    from wmlib.model.evaluate import GENERATED, CopyLast, ModelPredictor, Windows, paired, retrieval_table

    test = Windows.from_tokens(tokens(), "test", seq_len(), where=GENERATED)
    table = retrieval_table(test, {"copy": CopyLast(), "model": ModelPredictor(default_model())}, (1, 2, 4, 8))
    differences = {horizon: paired(table, "model", "copy", horizon) for horizon in (1, 2, 4, 8)}
    up_to = 0
    for horizon, difference in differences.items():  # the horizons before it must beat copying too
        if difference.low <= 0:
            break
        up_to = horizon
    return {f"h{horizon}": d.difference for horizon, d in differences.items()} | {"beats_up_to": up_to}


@functools.cache
def study():
    from wmlib.analysis import probing

    default_model()
    return probing.ProbeStudy.load(PROFILE)


def in_distribution(results, metric: str) -> dict:
    part = results[(results["setting"] == "in-distribution") & (results["metric"] == metric)]
    return dict(zip(part["representation"], part["value"]))


def expect_ch04_pitch_part() -> dict:
    from wmlib.analysis.probes import probe_target
    from wmlib.analysis.probing import FOLDS, MAX_TOKENS

    r2 = {}
    for row, array in study().features.items():
        if row.startswith("world model: "):
            result = probe_target(array, study().tokens.labels, "pitch_music", folds=FOLDS[PROFILE],
                                  max_tokens=MAX_TOKENS[PROFILE], representation=row)
            r2.update(in_distribution(result, "r2"))
    best = max(r2, key=r2.get)
    return {"best_part": best.removeprefix("world model: "), "r2": r2[best], "feature_r2": r2["world model: feature"]}


def expect_ch04_energy() -> dict:
    from wmlib.analysis.probes import paired_probe_difference

    results = study().run(["energy"], rows=["log-mel", "world model: feature"], supervised=False)
    r2 = in_distribution(results, "r2")
    return {"model": r2["world model: feature"], "log-mel": r2["log-mel"],
            **paired_dict(paired_probe_difference(results, "world model: feature", "log-mel", "energy"))}


def expect_ch05_phone_context() -> dict:
    from wmlib.analysis.probes import paired_probe_difference
    from wmlib.analysis.probing import ProbeStudy
    from wmlib.analysis.representations import stack_past

    base = study()
    mine = ProbeStudy(base.tokens, {"model": base.features["world model: feature"]}, base.types, base.profile)
    flat = base.tokens.mel.reshape(len(base.tokens.mel), -1)
    for context in (1, 16):  # the past stacked by hand: this token and the context - 1 before it, per utterance
        mine.add(f"log-mel {context}", stack_past(flat, base.tokens.labels, context))
    results = mine.run(["phone"], supervised=False)
    accuracy = in_distribution(results, "accuracy")
    return {"model": accuracy["model"], "log-mel 1": accuracy["log-mel 1"], "log-mel 16": accuracy["log-mel 16"],
            **paired_dict(paired_probe_difference(results, "model", "log-mel 16", "phone"))}


def expect_ch05_selectivity() -> dict:
    results = study().run(["phone"], rows=["log-mel", "world model: feature"], control=["phone"], supervised=False)
    value = {}
    for row in ("log-mel", "world model: feature"):
        part = results[(results["representation"] == row) & (results["metric"] == "accuracy")]
        settings = dict(zip(part["setting"], part["value"]))
        value[row] = settings["in-distribution"] - settings["control"]
    model, log_mel = value["world model: feature"], value["log-mel"]
    return {"model": model, "log-mel": log_mel, "more_selective": "model" if model > log_mel else "log-mel"}


def expect_ch06_real_speech() -> dict:
    from wmlib.analysis import real_sound
    from wmlib.model import runs
    from wmlib.model.evaluate import paired

    default_model()
    table = real_sound.real_retrieval(PROFILE, {"model": runs.run_dir(runs.DEFAULT_MODEL, PROFILE)}, tokens=tokens())
    part = table[table["set"] == "real speech (held out)"]
    part.attrs = table.attrs
    top1 = part.set_index("method")["top1"]
    return {"model": top1["model"], "copy last token": top1["copy last token"],
            **paired_dict(paired(part, "model", "copy last token", 1))}


def expect_ch06_source_transfer() -> dict:
    from sklearn.metrics import balanced_accuracy_score

    from wmlib.analysis import real_sound
    from wmlib.analysis.probes import make_probe
    from wmlib.analysis.representations import baseline_representations, model_representations
    from wmlib.model import runs

    default_model()
    chosen = real_sound.source_probe_tokens(tokens(), real_sound.SOURCE_PROBE_UTTERANCES[PROFILE])
    run = runs.run_dir(runs.DEFAULT_MODEL, PROFILE)
    features = {"model": model_representations(run, chosen, PROFILE)["feature"],
                "random init": model_representations(run / "checkpoints" / "step-000000", chosen, PROFILE)["feature"],
                "log-mel": baseline_representations(chosen)["log-mel"]}
    labels = chosen.labels
    train = (labels["split"] == "train").to_numpy()
    test = ((labels["split"] == "heldout") & (labels["domain"] == "real")).to_numpy()
    source = labels["source"].to_numpy()
    score = {name: balanced_accuracy_score(source[test], make_probe("linear", "classification", 0).fit(
        array[train], source[train]).predict(array[test])) for name, array in features.items()}
    return score | {"best": max(score, key=score.get)}


@functools.cache
def dream_study():
    from wmlib.analysis import coherence

    default_model()
    return coherence.DreamStudy.for_book(profile=PROFILE, tokens=tokens())[0]


def expect_ch07_key() -> dict:
    from wmlib.analysis import coherence
    from wmlib.analysis.dreams import DEFAULT_TEMPERATURE

    melody = dream_study().melody_table()
    dream = f"dream (T={DEFAULT_TEMPERATURE:g})"
    share = dict(zip(melody["continuation"], melody["in_key"]))
    return {"dream": share[dream], "random walk": share["random walk"],
            **paired_dict(coherence.melody_difference(melody, dream, "random walk", "in_key"))}


def expect_ch07_beyond_copying() -> dict:
    from wmlib.analysis import coherence

    curves = dream_study().horizon_curves()
    up_to = 0
    for horizon in sorted(curves["horizon"].unique()):
        if coherence.difference(curves, "dream (T=0)", "copy last token", horizon, "top1", True).low <= 0:
            break
        up_to = 40 * int(horizon)
    first = coherence.difference(curves, "dream (T=0)", "copy last token", 1, "top1", True)
    return {"beats_up_to_ms": up_to, "difference_40ms": first.difference}


def expect_ch08_inpainting() -> dict:
    from wmlib.analysis import applications
    from wmlib.analysis.dreams import CandidateBank

    model = default_model()
    gaps, _, _ = applications.GAPS[PROFILE]
    table = applications.inpainting_table(model, tokens(), PROFILE, bank=CandidateBank.from_tokens(model, tokens()),
                                          window=seq_len())
    best = [method for method in table["method"].unique() if method.startswith("best of")][0]
    return {"gap_ms": 40 * min(gaps),
            **paired_dict(applications.inpainting_difference(table, "music", 40 * min(gaps), best,
                                                             "linear interpolation"))}


def expect_ch08_few_shot() -> dict:
    from wmlib.analysis import applications
    from wmlib.analysis.representations import baseline_representations, model_representations
    from wmlib.model import runs

    default_model()
    chosen = applications.few_shot_tokens(tokens(), *applications.FEW_SHOT_UTTERANCES[PROFILE])
    features = {"model": model_representations(runs.run_dir(runs.DEFAULT_MODEL, PROFILE), chosen, PROFILE)["feature"],
                "log-mel": baseline_representations(chosen)["log-mel"]}
    table = applications.few_shot_curve(features, chosen.labels)
    fewest = None
    for shots in applications.SHOTS:
        if applications.few_shot_difference(table, "model", "log-mel", "generated test split", shots).low > 0:
            fewest = shots
            break
    eight = table[(table["test set"] == "generated test split") & (table["shots"] == 8)]
    values = dict(zip(eight["representation"], eight["balanced_accuracy"]))
    return {"fewest_shots": fewest, "model_8": values["model"], "log-mel_8": values["log-mel"]}


@functools.cache
def intervention_setup():
    from wmlib.analysis import interventions
    from wmlib.analysis.dreams import CandidateBank

    model = default_model()
    return (interventions.book_setup(model, tokens(), seq_len()), CandidateBank.from_tokens(model, tokens()),
            interventions.causal_windows(tokens(), seq_len()))


def causal_row(name: str, factor: float = 1.0):
    from wmlib.analysis import interventions

    setup, bank, windows = intervention_setup()
    table, _ = interventions.causal_table(default_model(), windows, {name: setup.directions[name]},
                                          {name: factor * setup.steps[name]}, bank)
    return table.iloc[0]


def expect_ch09_pitch_direction() -> dict:
    row = causal_row("pitch")
    return {"shift": row["shift"], "random": row["random"], "difference": row["difference"],
            "low": row["difference_low"], "high": row["difference_high"]}


def expect_ch09_linearity() -> dict:
    once, twice = causal_row("energy")["shift"], causal_row("energy", 2.0)["shift"]
    return {"shift": once, "shift_doubled": twice, "ratio": twice / once}


def onsets_by_loop(labels) -> tuple[np.ndarray, np.ndarray]:
    """Note onsets counted token by token: 1 where a voiced music token's note (MIDI pitch rounded) differs from the
    token before it in the same utterance, or that token is unvoiced."""
    values, mask = np.zeros(len(labels), dtype=int), np.zeros(len(labels), dtype=bool)
    previous = (None, False, None)  # utterance, voiced, note of the token before
    for i, row in enumerate(labels.itertuples()):
        voiced = bool(row.voiced) and np.isfinite(row.midi_pitch)
        note = round(row.midi_pitch) if voiced else None
        if row.source == "music" and voiced and row.split != "heldout":
            mask[i] = True
            values[i] = int(not (previous[0] == row.utt_id and previous[1] and previous[2] == note))
        previous = (row.utt_id, voiced, note)
    return values, mask


def expect_ch10_onset() -> dict:
    from sklearn.metrics import balanced_accuracy_score

    from wmlib.analysis.probes import grouped_cv_predict

    labels = study().tokens.labels
    values, mask = onsets_by_loop(labels)
    truth, groups = values[mask], labels["utt_id"].to_numpy()[mask]
    assert 0.05 < truth.mean() < 0.6  # the check itself sees onsets and continuations
    score = {}
    for name, row in (("model", "world model: feature"), ("log-mel", "log-mel")):
        predicted, _ = grouped_cv_predict(study().features[row][mask], truth, groups, "classification")
        score[name] = balanced_accuracy_score(truth, predicted)
    shuffled = np.random.default_rng(0).permutation(truth)
    predicted, _ = grouped_cv_predict(study().features["world model: feature"][mask], shuffled, groups,
                                      "classification")
    return score | {"shuffled": balanced_accuracy_score(shuffled, predicted)}


def stimulus_embeddings():
    from wmlib.analysis import rsa
    from wmlib.analysis.encoders import load_encoder, world_model_encoder
    from wmlib.model import runs

    default_model()
    stimuli = rsa.book_stimuli(PROFILE)
    encoders = {"model": world_model_encoder(runs.DEFAULT_MODEL, PROFILE),
                "random init": world_model_encoder(runs.DEFAULT_MODEL, PROFILE, step=0),
                "log-mel": load_encoder("log-mel", PROFILE)}
    return stimuli, {name: rsa.embed_stimuli(encoder, stimuli, PROFILE)[encoder.layers[0]]
                     for name, encoder in encoders.items()}


def expect_ch11_distance() -> dict:
    from scipy.spatial.distance import pdist, squareform
    from scipy.stats import spearmanr

    stimuli, embeddings = stimulus_embeddings()
    pitch = stimuli.labels["semitone"].to_numpy(dtype=float)
    keep = np.isfinite(pitch)
    x = embeddings["model"][keep].astype(np.float64)
    upper = np.triu_indices(keep.sum(), 1)
    label = np.abs(pitch[keep][:, None] - pitch[keep][None, :])[upper]
    return {method: spearmanr(squareform(pdist(x, method))[upper], label).statistic
            for method in ("correlation", "euclidean")}


def expect_ch11_cka() -> dict:
    from wmlib.analysis import rsa

    stimuli, embeddings = stimulus_embeddings()
    matrix = rsa.cka_matrix(embeddings, np.ones((1, len(stimuli.labels))))[0]
    names = list(embeddings)
    return {"model": matrix[names.index("model"), names.index("log-mel")],
            "random init": matrix[names.index("random init"), names.index("log-mel")]}


# -- the exercises ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Numeric:
    """An exercise whose answer is a dict: the expected one, the tolerance per number (other keys: equal), and a
    plausible mistake made from the right answer, which the check must reject."""

    expected: Callable[[], dict]
    tolerance: dict
    mistake: Callable[[dict], dict]

    def check(self, answer) -> None:
        compare(answer, expected_answer(self.expected), self.tolerance)


@functools.cache
def expected_answer(compute: Callable[[], dict]) -> dict:
    """What a check computes, once per test session."""
    return compute()


def flipped(answer: dict, first: str, second: str) -> dict:
    """The difference taken the wrong way round (``second`` minus ``first``)."""
    return answer | {first: answer[second], second: answer[first], "difference": -answer["difference"],
                     "low": -answer["high"], "high": -answer["low"]}


def unpaired(answer: dict) -> dict:
    """An interval of ±2 standard errors of the two methods taken apart: far wider than the paired one."""
    return answer | {"low": answer["difference"] - 0.2, "high": answer["difference"] + 0.2}


ACCURACY = 0.02  # accuracies, top-1, R², CKA and RSA correlations
INTERVAL = 0.03  # the ends of a 95% interval (another bootstrap seed moves them a little)
PAIRED = {"difference": ACCURACY, "low": INTERVAL, "high": INTERVAL}

EXERCISES: dict[str, Numeric | Callable] = {
    "ch03_ar_order": Numeric(expect_ch03_ar_order, {"model": ACCURACY, "linear AR (8 tokens)": ACCURACY, **PAIRED},
                             lambda a: flipped(a, "model", "linear AR (8 tokens)")),
    "ch03_horizon": Numeric(expect_ch03_horizon, {f"h{h}": ACCURACY for h in (1, 2, 4, 8)},
                            lambda a: a | {f"h{h}": -a[f"h{h}"] - 0.05 for h in (1, 2, 4, 8)}),
    "ch04_pitch_part": Numeric(expect_ch04_pitch_part, {"r2": ACCURACY, "feature_r2": ACCURACY},
                               lambda a: a | {"best_part": "feature" if a["best_part"] != "feature" else "encoder"}),
    "ch04_energy": Numeric(expect_ch04_energy, {"model": ACCURACY, "log-mel": ACCURACY, **PAIRED}, unpaired),
    "ch05_phone_context": Numeric(expect_ch05_phone_context, {"model": ACCURACY, "log-mel 1": ACCURACY,
                                                              "log-mel 16": ACCURACY, **PAIRED},
                                  lambda a: a | {"log-mel 16": a["log-mel 1"], "log-mel 1": a["log-mel 16"]}),
    "ch05_selectivity": Numeric(expect_ch05_selectivity, {"model": ACCURACY, "log-mel": ACCURACY},
                                lambda a: a | {"model": a["model"] + 0.1}),  # the control's accuracy left out
    "ch06_real_speech": Numeric(expect_ch06_real_speech, {"model": ACCURACY, "copy last token": ACCURACY, **PAIRED},
                                lambda a: flipped(a, "model", "copy last token")),
    "ch06_source_transfer": Numeric(expect_ch06_source_transfer, {"model": ACCURACY, "random init": ACCURACY,
                                                                  "log-mel": ACCURACY},
                                    lambda a: a | {"model": a["model"] + 0.1}),  # plain accuracy, not balanced
    "ch07_key": Numeric(expect_ch07_key, {"dream": ACCURACY, "random walk": ACCURACY, **PAIRED},
                        lambda a: flipped(a, "dream", "random walk")),
    "ch07_beyond_copying": Numeric(expect_ch07_beyond_copying, {"difference_40ms": ACCURACY},
                                   lambda a: a | {"beats_up_to_ms": a["beats_up_to_ms"] + 40}),  # tokens, not ms
    "ch08_inpainting": Numeric(expect_ch08_inpainting, {"difference": 0.3, "low": 0.5, "high": 0.5},
                               lambda a: a | {"difference": -a["difference"] + 1.0}),
    "ch08_few_shot": Numeric(expect_ch08_few_shot, {"model_8": ACCURACY, "log-mel_8": ACCURACY},
                             lambda a: a | {"fewest_shots": 1 if a["fewest_shots"] != 1 else 2}),
    "ch09_pitch_direction": Numeric(expect_ch09_pitch_direction, {"shift": ACCURACY, "random": ACCURACY, **PAIRED},
                                    lambda a: flipped(a, "shift", "random")),
    "ch09_linearity": Numeric(expect_ch09_linearity, {"shift": 0.05, "shift_doubled": 0.05, "ratio": 0.1},
                              lambda a: a | {"ratio": a["shift"] / a["shift_doubled"]}),
    "ch10_onset": Numeric(expect_ch10_onset, {"model": ACCURACY, "log-mel": ACCURACY, "shuffled": ACCURACY},
                          lambda a: a | {"model": a["model"] + 0.1}),
    "ch11_distance": Numeric(expect_ch11_distance, {"correlation": ACCURACY, "euclidean": ACCURACY},
                             lambda a: a | {"euclidean": a["correlation"] + 0.1}),
    "ch11_cka": Numeric(expect_ch11_cka, {"model": ACCURACY, "random init": ACCURACY},
                        lambda a: a | {"model": a["model"] ** 0.5}),  # HSIC not squared
}


def check_small_encoder(module) -> None:
    """ch10_small_encoder: at most 8 numbers per token, deterministic, each token from its own frames, energy read
    by a linear probe with R² >= 0.8."""
    from wmlib.analysis.probes import probe_target

    mel = tokens().mel[:2000]
    features = np.asarray(module.encode(mel))
    assert features.ndim == 2 and len(features) == len(mel) and 1 <= features.shape[1] <= 8, features.shape
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(features, module.encode(mel))  # deterministic
    changed = mel.copy()
    changed[10] += 20.0
    moved = np.asarray(module.encode(changed))
    np.testing.assert_array_equal(np.delete(moved, 10, 0), np.delete(features, 10, 0))  # a token from its own frames
    labels = tokens().labels.iloc[:2000].reset_index(drop=True)
    energy = probe_target(features, labels, "energy", seeds=(0,), n_boot=50)
    r2 = energy.query("setting == 'in-distribution' and metric == 'r2'")["value"].iloc[0]
    assert r2 >= 0.8, f"a linear probe reads energy from the encoding with R² {r2:.2f}; it should reach 0.8"


CODE = {"ch10_small_encoder": (check_small_encoder,
                               # mean dB per band: 64 numbers (too many), and the token before it rolled in
                               "import numpy as np\n\ndef encode(mel):\n    level = mel.mean(axis=(1, 2))[:, None]\n"
                               "    return np.concatenate([level, np.roll(level, 1, 0)], 1)\n")}
NAMES = sorted([*EXERCISES, *CODE])


@functools.cache
def answer_of(path: Path) -> dict:
    """``answer(PROFILE)`` of one exercise file, once per test session (the check of a reference solution and the
    wrong answer made from it share it)."""
    default_model()  # the tiny book's models exist before the answer looks for them
    return load(path).answer(PROFILE)


def check(name: str, path: Path) -> None:
    if name in CODE:
        CODE[name][0](load(path))
    else:
        EXERCISES[name].check(answer_of(path.resolve()))


def test_every_exercise_has_a_stub_and_a_solution_and_nothing_else():
    assert sorted(path.stem for path in STUBS.glob("ch*.py")) == NAMES
    assert sorted(path.stem for path in (STUBS / "solutions").glob("ch*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_exercise(name):
    """The check of one exercise, on the solutions folder (default: the reference solutions)."""
    check(name, SOLUTIONS / f"{name}.py")


@pytest.mark.parametrize("name", NAMES)
def test_the_check_fails_on_the_stub(name):
    with pytest.raises((AssertionError, NotImplementedError)):
        check(name, STUBS / f"{name}.py")


@pytest.mark.parametrize("name", NAMES)
def test_the_check_fails_on_a_wrong_answer(name, tmp_path):
    if name in CODE:
        path = tmp_path / f"{name}.py"
        path.write_text(CODE[name][1])
        with pytest.raises(AssertionError):
            check(name, path)
        return
    exercise = EXERCISES[name]
    right = answer_of((STUBS / "solutions" / f"{name}.py").resolve())
    compare(right, expected_answer(exercise.expected), exercise.tolerance)  # the reference passes ...
    with pytest.raises(AssertionError):  # ... and the mistake made from it does not
        compare(exercise.mistake(right), expected_answer(exercise.expected), exercise.tolerance)
