"""Sparse features: the dictionary recovers planted atoms, the labelling finds a planted feature-label pair and not a
shuffled one, erasure and steering do their arithmetic on planted linear cases, a seed fixes everything, bad input
gets a clear error."""
import numpy as np
import pandas as pd
import pytest
import torch

from wmlib.analysis.sparse import causal
from wmlib.analysis.sparse.dictionary import (
    DictionaryConfig,
    SparseDictionary,
    cached_dictionary,
    overcomplete_sae,
    train_dictionary,
)
from wmlib.analysis.sparse.labelling import interpretable_shares, label_features, label_matrix, share_difference
from wmlib.analysis.sparse.quality import best_matches, retrieval_kept, stability


def planted(n=12_000, width=24, atoms=48, active=3, seed=0):
    """Rows that are sparse non-negative sums of known unit atoms, plus a little noise."""
    rng = np.random.default_rng(seed)
    dictionary = rng.normal(size=(atoms, width))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((n, atoms))
    for row in range(n):
        codes[row, rng.choice(atoms, active, replace=False)] = rng.uniform(0.5, 2.0, active)
    return (codes @ dictionary + 0.01 * rng.normal(size=(n, width))).astype(np.float32), dictionary


CONFIG = DictionaryConfig(features=96, top_k=3, epochs=15, batch_size=128, lr=3e-3, aux_penalty=1 / 8)


@pytest.fixture(scope="module")
def recovered():
    x, atoms = planted()
    return x, atoms, train_dictionary(x, CONFIG, seed=0)


def test_the_dictionary_recovers_planted_atoms(recovered):
    x, atoms, dictionary = recovered
    matches = best_matches(atoms, dictionary.atoms)
    assert np.median(matches) > 0.9 and (matches > 0.9).mean() >= 0.75, np.round(np.sort(matches), 2)
    random = np.random.default_rng(1).normal(size=dictionary.atoms.shape)
    assert np.median(best_matches(atoms, random)) < 0.6  # the check can fail
    codes = dictionary.encode(x[:100])
    assert ((codes > 0).sum(axis=1) <= CONFIG.top_k).all() and (codes >= 0).all()
    assert np.allclose(np.linalg.norm(dictionary.atoms, axis=1), 1, atol=1e-4)


def test_a_seed_fixes_the_dictionary(recovered):
    x, _, dictionary = recovered
    again = train_dictionary(x, CONFIG, seed=0)
    assert np.array_equal(again.atoms, dictionary.atoms) and np.array_equal(again.encoder_weight,
                                                                            dictionary.encoder_weight)
    other = train_dictionary(x, CONFIG, seed=1)
    assert not np.array_equal(other.atoms, dictionary.atoms)
    # two seeds on data with a true dictionary find mostly the same atoms
    assert stability(dictionary, other)["stable"] > 0.5


def test_the_numpy_codes_are_the_librarys_codes():
    """The dictionary's own encode (numpy, no torch module kept) gives overcomplete's TopKSAE codes exactly."""
    from wmlib.analysis.sparse.dictionary import _encoder_affine

    torch.manual_seed(0)
    module = overcomplete_sae().TopKSAE(12, nb_concepts=40, top_k=5).eval()
    weight, bias = _encoder_affine(module, 12)
    mine = SparseDictionary(weight, bias, np.eye(40, 12, dtype=np.float32), np.zeros(12, np.float32), 1.0, 5)
    x = np.random.default_rng(0).normal(size=(64, 12)).astype(np.float32)
    with torch.no_grad():
        _, theirs = module.encode(torch.as_tensor(x))
    assert np.allclose(mine.encode(x), theirs.numpy(), atol=1e-5)


def test_save_load_and_cache_without_pickle(tmp_path, recovered):
    x, _, dictionary = recovered
    path = dictionary.save(tmp_path / "d.safetensors")
    loaded = SparseDictionary.load(path)
    assert np.array_equal(loaded.atoms, dictionary.atoms) and loaded.scale == dictionary.scale
    assert np.allclose(loaded.encode(x[:50]), dictionary.encode(x[:50]))
    small = DictionaryConfig(features=16, top_k=2, epochs=1)
    first = cached_dictionary(x[:500], tmp_path, small, seed=0)
    cached = list(tmp_path.glob("sae-*.safetensors"))
    assert len(cached) == 1
    assert np.array_equal(cached_dictionary(x[:500], tmp_path, small, seed=0).atoms, first.atoms)
    (tmp_path / "bad.safetensors").write_bytes(b"not a dictionary")
    with pytest.raises(ValueError, match="delete it"):
        SparseDictionary.load(tmp_path / "bad.safetensors")
    cached[0].write_bytes(b"truncated")  # a cache file that cannot be read is trained again, not trusted
    assert np.array_equal(cached_dictionary(x[:500], tmp_path, small, seed=0).atoms, first.atoms)


def test_bad_input_gets_a_clear_error(recovered):
    x, _, dictionary = recovered
    broken = x[:200].copy()
    broken[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_dictionary(broken, CONFIG)
    with pytest.raises(ValueError, match="NaN"):
        dictionary.encode(broken)
    with pytest.raises(AssertionError, match="width"):
        dictionary.encode(x[:5, :10])
    with pytest.raises(ValueError, match="at least 2 rows"):
        train_dictionary(x[:1], CONFIG)


# -- labelling ---------------------------------------------------------------------------------------------------


def token_labels(n, seed):
    rng = np.random.default_rng(seed)
    phones = rng.choice(["aa", "s", "t", "m"], n)
    return pd.DataFrame({
        "utt_id": np.repeat([f"u{i}" for i in range(n // 20)], 20), "source": "speech", "voice": "kal",
        "phone": phones, "phone_class": np.where(phones == "s", "fricative", "vowel"),
        "midi_pitch": np.nan, "energy_db": rng.uniform(-50, -10, n), "domain": "generated"})


def test_labelling_finds_a_planted_feature_and_not_a_shuffled_one():
    rng = np.random.default_rng(0)
    train, test = token_labels(2000, 0), token_labels(1000, 1)
    train_matrix, test_matrix = label_matrix(train), label_matrix(test)
    codes = {}
    for name, labels in (("train", train), ("test", test)):
        values = rng.exponential(0.2, (len(labels), 6)) * (rng.random((len(labels), 6)) < 0.1)
        values[:, 2] = np.where(labels["phone"] == "aa", rng.uniform(1, 2, len(labels)), 0)  # feature 2 = "aa"
        codes[name] = values
    found = label_features(codes["train"], train_matrix, codes["test"], test_matrix)
    assert found.loc[2, "label"] == "phone: aa" and found.loc[2, "f1"] > 0.95
    assert (found.drop(index=2)["f1"] < 0.5).all()
    shuffled = test_matrix.sample(frac=1, random_state=0).reset_index(drop=True)
    scrambled = label_features(codes["train"], train_matrix, codes["test"], shuffled)
    assert scrambled.loc[2, "f1"] < 0.5
    groups = test["utt_id"].to_numpy()
    shares = interpretable_shares({"planted": (codes["test"], test_matrix, found),
                                   "shuffled": (codes["test"], shuffled, scrambled)}, groups, n_boot=200)
    assert shares["planted"][0] == pytest.approx(1 / 6)
    difference = share_difference(shares, "planted", "shuffled")
    assert difference.verdict == "beats"


# -- causal tests ------------------------------------------------------------------------------------------------


def identity_dictionary(width):
    return SparseDictionary(np.eye(width, dtype=np.float32), np.zeros(width, np.float32),
                            np.eye(width, dtype=np.float32), np.zeros(width, np.float32), 1.0, width)


def test_erasure_needs_the_planted_features_and_not_random_ones():
    """A concept written in one of 64 features: zeroing that one feature brings the probe to chance; zeroing one
    random feature does not."""
    rng = np.random.default_rng(0)
    width = 64
    dictionary = identity_dictionary(width)

    def make(n, seed):
        local = np.random.default_rng(seed)
        labels = token_labels(n, seed)
        x = local.uniform(0, 1, (n, width)).astype(np.float32)
        x[:, 5] = np.where(labels["phone_class"] == "fricative", 3.0, 0.0) + local.uniform(0, 0.1, n)
        return dictionary.encode(x), label_matrix(labels), labels["utt_id"].to_numpy()

    del rng
    curve = causal.erasure_curve(dictionary, make(1600, 0), make(800, 1), "fricative vs vowel", n_boot=100)
    first = curve[curve["erased"] == 1].iloc[0]
    assert curve.iloc[0]["accuracy"] > 0.95
    assert first["accuracy"] < 0.6 and first["random"] > 0.9 and first["difference_high"] < 0
    assert causal.erasure_count(curve) == 1
    summary = causal.erasure_summary(curve, width).iloc[0]
    assert summary["features zeroed to reach chance"] == 1 and summary["share of the dictionary"] == 1 / width
    assert summary["probe after zeroing them"] == first["accuracy"]


class PlantedModel:
    """A stand-in with the two things steering reads: ``features`` (the state is the input) and a prediction head."""

    class config:
        dynamics, contrastive, temperature = "transformer", True, 0.1

    prediction_heads = [torch.nn.Identity()]

    def features(self, mel, context=None):
        return {"feature": mel}


def test_steering_moves_the_prediction_toward_the_label_and_a_random_direction_does_not():
    from types import SimpleNamespace

    width, rng = 16, np.random.default_rng(0)
    keys = torch.nn.functional.normalize(torch.as_tensor(rng.normal(size=(200, width)), dtype=torch.float32), dim=1)
    keys[:100, 0] += 3  # tokens 0..99 carry the label and point along axis 0
    keys = torch.nn.functional.normalize(keys, dim=1)
    bank = SimpleNamespace(keys=keys)
    bank_labels = pd.DataFrame({"phone: aa": np.arange(200) < 100})
    windows = SimpleNamespace(mel=rng.normal(size=(120, 12, width)).astype(np.float32),
                              utt_ids=np.repeat([f"u{i}" for i in range(40)], 3))
    dictionary = identity_dictionary(width)
    train_codes = np.zeros((50, width), np.float32)
    train_codes[:, 0] = 2.0
    chosen = pd.DataFrame({"feature": [0], "label": ["phone: aa"], "f1": [0.9]})
    table = causal.steering_table(PlantedModel(), dictionary, chosen, windows, bank, bank_labels, train_codes,
                                  first=2, every=3, n_boot=200)
    row = table.iloc[0]
    assert row["step"] == pytest.approx(2.0)
    assert row["shift"] > 0.2 and abs(row["random"]) < row["shift"] / 3 and row["verdict"] == "beats"
    assert row["windows"] == 120 and row["utterances"] == 40


def test_retrieval_kept_is_one_when_the_reconstruction_is_the_state():
    rng = np.random.default_rng(0)
    state = rng.random(600) < 0.8
    hits = {"state": state, "reconstruction": state.copy(), "mean": rng.random(600) < 0.01,
            "groups": np.repeat(np.arange(60), 10)}
    kept = retrieval_kept(hits, n_boot=200)
    assert kept["kept"] == pytest.approx(1.0) and kept["reconstruction_vs_state"].difference == 0
    hits["reconstruction"] = hits["mean"].copy()
    assert retrieval_kept(hits, n_boot=200)["kept"] == pytest.approx(0.0)


# -- the study and its command line --------------------------------------------------------------------------------


def test_the_command_line_names_a_bad_part_or_model_in_one_line(capsys):
    from wmlib import cli

    assert cli.main(["sparse-features", "--profile", "tiny", "--part", "nowhere"]) == 2
    assert "unknown part 'nowhere'" in capsys.readouterr().err
    assert cli.main(["sparse-features", "--profile", "tiny", "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model") and err.count("\n") == 1
