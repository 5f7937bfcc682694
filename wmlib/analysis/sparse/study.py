"""The chapter's study: sparse dictionaries of the default model's state and of its two controls (the stacked
log-mel the probes use as baseline, and the same model at random initialisation), each trained twice (two seeds)
with the same settings, labelled, tested.

    study = sparse_features()                  # tokens, representations, dictionaries (cached), labels
    study.quality_table()                      # variance explained, L0, dead, dense, seed stability
    study.interpretability_table()             # share of features matching a label (F1 ≥ 0.5), paired
    study.retrieval()                          # the model's next-token top-1 from its state's reconstruction
    study.erasure(), study.steering()          # the causal tests

The part read is the model's ``feature``: its state after token t.  It is what the prediction head reads to
retrieve token t + 1 (so replacing it by its reconstruction is a test of what the model *uses*), and the part whose
probe rows the chapters on probing lead with.

Used by the chapter "Sparse features".
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from wmlib.data.features import TokenSet

from .dictionary import DictionaryConfig, SparseDictionary, cached_dictionary
from .labelling import (
    MATCH_F1,
    effects_of,
    energy_bands,
    interpretable_shares,
    label_features,
    label_matrix,
    share_difference,
)
from .quality import quality, retrieval_hits, retrieval_kept, stability

#: The representations compared, in table order.
ROWS = ("world model", "log-mel", "random init")
#: Training and held-out tokens per profile (whole utterances, balanced over source x domain).
TOKENS = {"tiny": (3000, 1500), "default": (32_000, 12_000), "large": (200_000, 40_000)}
#: The settings of the book: 4x the model's state width, 16 active features per token.
BOOK_CONFIG = DictionaryConfig(expansion=4, top_k=16, epochs=6, batch_size=128, lr=3e-3, aux_penalty=1 / 8,
                               max_tokens=32_000)
TINY_CONFIG = DictionaryConfig(expansion=4, top_k=4, epochs=4, batch_size=64, lr=3e-3, aux_penalty=1 / 8)
PARTS = ("feature", "context", "encoder", "prior")


class SparseFeaturesError(ValueError):
    """A request the study cannot answer: an unknown part, a run not trained."""


def balanced_utterances(tokens: TokenSet, splits, budget: int, seed: int) -> TokenSet:
    """Whole utterances of ``splits``, about ``budget`` tokens in all, the same share for every (source, domain)."""
    labels = tokens.labels
    mask = labels["split"].isin(list(splits)).to_numpy()
    table = labels[mask].groupby("utt_id", sort=True).agg(source=("source", "first"), domain=("domain", "first"),
                                                          size=("token", "size"))
    groups = list(table.groupby(["source", "domain"], sort=True))
    rng = np.random.default_rng(seed)
    chosen = []
    for _, group in groups:
        total = 0
        for name in rng.permutation(group.index.to_numpy()):
            if total >= budget // len(groups):
                break
            chosen.append(name)
            total += int(group.loc[name, "size"])
    return tokens.select(labels["utt_id"].isin(set(chosen)).to_numpy())


@dataclass
class Row:
    """One representation's two dictionaries and what they say."""

    name: str
    train_x: np.ndarray
    test_x: np.ndarray
    dictionaries: list[SparseDictionary]
    train_codes: np.ndarray = None
    test_codes: np.ndarray = None
    features: pd.DataFrame = None  # label_features of the first dictionary


@dataclass
class SparseStudy:
    """Tokens, the three representations' dictionaries, their codes and labelled features.

    Attributes:
        profile, part, run: the corpus profile, the model's part read, the model's run directory.
        tokens: the profile's whole token set (windows for retrieval and steering, the steering bank).
        train, test: the dictionaries' training tokens and the held-out tokens they are measured on.
        train_labels, test_labels: :func:`label_matrix` of each (the same columns).
        rows: representation name -> :class:`Row`, in :data:`ROWS` order.
        effects, energy_edges: what :func:`label_matrix` needs to label further tokens the same way.
    """

    profile: str
    part: str
    run: Path
    tokens: TokenSet
    train: TokenSet
    test: TokenSet
    train_labels: pd.DataFrame
    test_labels: pd.DataFrame
    rows: dict[str, Row]
    config: DictionaryConfig
    effects: dict
    energy_edges: np.ndarray
    seconds: dict = field(default_factory=dict)
    n_boot: int = 1000
    _shares: dict | None = field(default=None, repr=False)

    @property
    def groups(self) -> np.ndarray:
        return self.test.labels["utt_id"].to_numpy()

    def quality_table(self) -> pd.DataFrame:
        """Per representation: width, dictionary size, L0, variance explained (held-out), dead and dense
        features, seed stability (share of the first seed's features matched above cosine 0.7 by the second)."""
        out = []
        for row in self.rows.values():
            first, second = row.dictionaries
            alive = (row.train_codes > 0).any(axis=0)
            out.append({"representation": row.name, "width": row.train_x.shape[1], **quality(first, row.test_x,
                        row.test_codes), **stability(first, second, alive),
                        "train_seconds": sum(d.info.get("seconds", 0) for d in row.dictionaries)})
        return pd.DataFrame(out)

    def shares(self) -> dict[str, np.ndarray]:
        """:func:`interpretable_shares` of every row on the same resamples."""
        if self._shares is None:
            self._shares = interpretable_shares(
                {name: (row.test_codes, self.test_labels, row.features) for name, row in self.rows.items()},
                self.groups, self.n_boot)
        return self._shares

    def interpretability_table(self) -> pd.DataFrame:
        """Share of features whose held-out F1 for their best label reaches 0.5, per representation, with 95%
        intervals over held-out utterances and the paired difference of the model against each control."""
        shares = self.shares()
        out = []
        for name, row in self.rows.items():
            low, high = np.quantile(shares[name][1:], [0.025, 0.975])
            matched = row.features[row.features["f1"] >= MATCH_F1]
            entry = {"representation": name, "share": shares[name][0], "share_low": low, "share_high": high,
                     "matched": len(matched), "median_f1": float(row.features["f1"].median()),
                     "families": ", ".join(f"{k} {v}" for k, v in matched["family"].value_counts().items())}
            if name != ROWS[0]:
                difference = share_difference(shares, ROWS[0], name)
                entry |= {"model_minus": difference.difference, "model_minus_low": difference.low,
                          "model_minus_high": difference.high, "verdict": difference.verdict}
            out.append(entry)
        return pd.DataFrame(out)

    def share_verdict(self, control: str) -> str:
        """"the world model's dictionary beats / loses to / is not distinguishable from <control>'s" with numbers."""
        shares = self.shares()
        difference = share_difference(shares, ROWS[0], control)
        return (f"{difference.verb} {control} ({shares[ROWS[0]][0]:.1%} against {shares[control][0]:.1%} of "
                f"features; paired difference {difference.difference:+.1%} [{difference.low:+.1%}, "
                f"{difference.high:+.1%}])")

    def by_family(self) -> pd.DataFrame:
        """Matched features (held-out F1 ≥ 0.5) per label family and representation."""
        counts = {name: row.features[row.features["f1"] >= MATCH_F1]["family"].value_counts()
                  for name, row in self.rows.items()}
        return pd.DataFrame(counts).fillna(0).astype(int)

    # -- the model itself ----------------------------------------------------------------------------------------

    @cached_property
    def model(self):
        """The trained model (loaded once, on first use), in eval mode."""
        from wmlib.model.checkpoints import load_model

        model, _ = load_model(self.run)
        return model.eval()

    def retrieval(self, windows: int = 200, length: int = 64) -> dict:
        """The model's top-1 next-token retrieval (h = 1) on held-out windows from its own state, from the first
        dictionary's reconstruction of it, and from the mean state (training mean): :func:`retrieval_kept`."""
        from wmlib.analysis.interventions import observe_features
        from wmlib.model.evaluate import Windows

        model = self.model
        test = Windows.from_tokens(self.tokens, "test", length, max_windows=windows, seed=0)
        state = observe_features(model, test.mel)  # (W, L, d)
        dictionary = self.rows[ROWS[0]].dictionaries[0]
        flat = state.reshape(-1, state.shape[-1])
        states = {"state": state, "reconstruction": dictionary.reconstruct(flat).reshape(state.shape),
                  "mean": np.broadcast_to(self.rows[ROWS[0]].train_x.mean(axis=0), state.shape)}
        return retrieval_kept(retrieval_hits(model, test, states), n_boot=self.n_boot)

    def erasure(self, row: str = ROWS[0], concepts=None) -> pd.DataFrame:
        """:func:`wmlib.analysis.sparse.causal.erasure_curve` for each concept, on one representation's
        dictionary."""
        from .causal import CONCEPTS, erasure_curve

        entry = self.rows[row]
        train = (entry.train_codes, self.train_labels, self.train.labels["utt_id"].to_numpy())
        test = (entry.test_codes, self.test_labels, self.groups)
        return pd.concat([erasure_curve(entry.dictionaries[0], train, test, concept, n_boot=self.n_boot // 2)
                          .assign(representation=row) for concept in (concepts or CONCEPTS)], ignore_index=True)

    def steering_features(self, per_family: int = 1, families=("phone class", "phone", "source", "silence",
                                                                "noise", "register", "domain")) -> pd.DataFrame:
        """The model's best-matched feature of each family (highest held-out F1), to steer with."""
        features = self.rows[ROWS[0]].features
        features = features[features["label"] != ""].sort_values("f1", ascending=False)
        chosen = [features[features["family"] == name].head(per_family) for name in families]
        return pd.concat([c for c in chosen if len(c)], ignore_index=True)

    def steering(self, windows: int = 120, length: int = 32, chosen: pd.DataFrame | None = None) -> pd.DataFrame:
        """:func:`wmlib.analysis.sparse.causal.steering_table` for :meth:`steering_features`, on held-out
        windows (test split, every domain) against a bank of training tokens."""
        from wmlib.analysis.dreams import CandidateBank
        from wmlib.model.evaluate import Windows

        from .causal import steering_table

        model = self.model
        test = Windows.from_tokens(self.tokens, "test", length, max_windows=windows, seed=0, stride=length // 2)
        bank = CandidateBank.from_tokens(model, self.tokens, seed=0)
        bank_labels = label_matrix(bank.labels, self.effects, self.energy_edges)
        bank_labels = bank_labels.reindex(columns=self.train_labels.columns, fill_value=False)
        row = self.rows[ROWS[0]]
        return steering_table(model, row.dictionaries[0], self.steering_features() if chosen is None else chosen,
                              test, bank, bank_labels, row.train_codes, n_boot=self.n_boot)

    # -- the browser's data --------------------------------------------------------------------------------------

    def top_tokens(self, feature: int, count: int = 8, row: str = ROWS[0]) -> pd.DataFrame:
        """The held-out tokens on which ``feature`` fires most, with their labels and activation (one per
        utterance, so the list shows different sounds)."""
        codes = self.rows[row].test_codes[:, feature]
        order = np.argsort(-codes, kind="stable")
        order = order[codes[order] > 0]
        labels = self.test.labels.iloc[order].assign(activation=codes[order], row=order)
        return labels.drop_duplicates("utt_id").head(count).reset_index(drop=True)


def sparse_features(profile: str | None = None, model: str | None = None, part: str = "feature",
                    config: DictionaryConfig | None = None, seeds=(0, 1), n_boot: int = 1000,
                    progress: bool = False) -> SparseStudy:
    """Train (or load from the cache) the sparse dictionaries of a trained model's ``part`` and of its controls,
    and label every feature.

    Args:
        profile: the corpus profile (default ``$WMLIB_PROFILE`` or ``default``).
        model: a named model, run directory or checkpoint (default: the book's default model); its random-init
            control is the run's step-0 checkpoint.
        part: which of the model's per-token states (:data:`PARTS`; ``feature`` by default).
        config: the dictionary's settings (default :data:`BOOK_CONFIG`, :data:`TINY_CONFIG` under ``tiny``); the
            dictionary size is ``expansion`` times the *model's* width for every representation.
        seeds: the dictionaries trained per representation (the second for seed stability).
    """
    from wmlib.data.corpus import build_corpus
    from wmlib.data.features import load_tokens
    from wmlib.data.profiles import data_root, get_profile
    from wmlib.model.runs import locate_model

    from ..representations import baseline_representations, model_representations

    started = time.perf_counter()
    profile = get_profile(profile).name
    if part not in PARTS:
        raise SparseFeaturesError(f"unknown part {part!r}: the transformer's parts are {', '.join(PARTS)}")
    try:
        _, run = locate_model(model, profile)
    except (LookupError, ValueError) as error:  # an unknown name, a run not trained: the message names the fix
        raise SparseFeaturesError(str(error).strip("'\"")) from None
    step0 = run / "checkpoints" / "step-000000" if (run / "checkpoints").is_dir() else None
    if step0 is None or not step0.is_dir():
        raise SparseFeaturesError(f"{run} has no step-0 checkpoint: the random-init control needs one (train the "
                                  "model with the book's settings, which keep it)")
    config = config or (TINY_CONFIG if profile == "tiny" else BOOK_CONFIG)
    tokens = load_tokens(profile)
    train_budget, test_budget = TOKENS.get(profile, TOKENS["default"])
    train = balanced_utterances(tokens, ("train",), train_budget, seed=0)
    test = balanced_utterances(tokens, ("test", "heldout"), test_budget, seed=1)
    effects = effects_of(build_corpus(profile, progress=False).utterances)
    edges = energy_bands(train.labels["energy_db"].to_numpy())
    train_labels = label_matrix(train.labels, effects, edges)
    test_labels = label_matrix(test.labels, effects, edges).reindex(columns=train_labels.columns, fill_value=False)
    seconds = {"tokens": time.perf_counter() - started}

    representations = {}
    for name, path in ((ROWS[0], run), (ROWS[2], step0)):
        pair = [model_representations(path, subset, profile, progress=progress) for subset in (train, test)]
        if part not in pair[0].parts:
            raise SparseFeaturesError(f"the model has no part {part!r}; it has {', '.join(pair[0].parts)}")
        representations[name] = (pair[0][part], pair[1][part])
    baselines = [baseline_representations(subset) for subset in (train, test)]
    representations[ROWS[1]] = (baselines[0]["log-mel"], baselines[1]["log-mel"])
    seconds["representations"] = time.perf_counter() - started - seconds["tokens"]

    features = config.atoms(representations[ROWS[0]][0].shape[1])
    cache = data_root() / profile / "sparse"
    rows = {}
    for name in ROWS:
        train_x, test_x = representations[name]
        clock = time.perf_counter()
        dictionaries = [cached_dictionary(train_x, cache, config, features, seed, progress) for seed in seeds]
        seconds[f"dictionaries: {name}"] = time.perf_counter() - clock
        row = Row(name, train_x, test_x, dictionaries)
        row.train_codes, row.test_codes = dictionaries[0].encode(train_x), dictionaries[0].encode(test_x)
        row.features = label_features(row.train_codes, train_labels, row.test_codes, test_labels)
        rows[name] = row
    seconds["total"] = time.perf_counter() - started
    return SparseStudy(profile, part, run, tokens, train, test, train_labels, test_labels, rows, config, effects, edges,
                       seconds, n_boot)
