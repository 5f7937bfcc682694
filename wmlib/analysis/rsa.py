"""Representational similarity analysis (RSA) on rsatoolbox, and linear CKA: the world model among other encoders.

The protocol follows Tuckute et al. (2023) where it applies:

- **stimuli** (:func:`build_stimuli`): one shared, seeded set of 40 ms tokens inside short clips of utterances the
  models never trained on (held-out and test splits): generated speech over voices, generated music over
  instruments, noise, real speech and real music.  Every encoder hears the same clips (HEAR API, on the 40 ms grid)
  and is read at the same tokens, after at least :data:`WARMUP_TOKENS` tokens of context;
- **RDMs**: ``1 - Pearson`` between the stimuli's embeddings (rsatoolbox ``calc_rdm(method="correlation")``), per
  encoder and layer; **label models** (:func:`label_rdms`): pitch distance, phone identity, phone class, energy
  distance, source, voice, each on the stimuli where the label is defined (NaN elsewhere);
- **comparisons**: Spearman between RDMs (rank-based), rsatoolbox's whitened Pearson (``corr_cov``), and linear
  CKA (Kornblith et al., 2019) between the embeddings;
- **intervals**: 95%, over stimuli, resampling whole clips (the stimuli of one utterance are not independent):
  for Spearman a bootstrap of clips, for CKA half-samples of clips (:func:`half_weights` says why).  Resampling is
  done by weights — a resample is the count of each clip — so 1,000 resamples cost a few clip-by-clip block sums
  per comparison instead of 1,000 RDMs (:class:`ClipBootstrap`).  Spearman's ranks are those of the full stimulus
  set (a resample does not re-rank); ``tests/analysis/test_rsa.py`` measures how close that is to re-ranking;
- **best layer, cross-validated**: for encoders with several layers, the layer is chosen on one half of the clips
  and scored on the other half, both ways round (:func:`crossvalidated_label_table`);
- **controls**: the random-init model, the world model with its weights permuted (each tensor's entries shuffled:
  Tuckute's control), and a permutation null of each label model; **noise ceiling**: two training seeds of the
  default model as "subjects" (:func:`seed_agreement`).

rsatoolbox quirks handled here: ``euclidean`` is squared and divided by channels (we use ``correlation``); a
``descriptor`` re-sorts an RDM (we keep the stimulus order and sort figures explicitly); ``tau-a`` is slow on many
stimuli (we use Spearman).

Used by the chapter "Representational similarity".
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wmlib.data.features import FeatureConfig, TokenSet
from wmlib.data.files import atomic_write
from wmlib.model.bootstrap import bootstrap_weights

from .hear_api import GridError, HearModel, to_token_grid

RSA_VERSION = "rsa-1"
#: Tokens of each clip before the first stimulus: every encoder has heard 640 ms of the clip.
WARMUP_TOKENS = 16
#: Clips per (domain, source) of the book's stimulus set: 48 clips, 12 stimuli each = 576 stimuli.
BOOK_PLAN = {("generated", "speech"): 16, ("generated", "music"): 12, ("generated", "noise"): 6,
             ("real", "speech"): 7, ("real", "music"): 7}
#: The label models, in the order the book shows them: name -> (kind, description).
LABEL_MODELS = {
    "pitch": ("distance", "|difference in semitones| (music notes, voiced speech)"),
    "phone": ("identity", "same phone or not (generated speech, silence excluded)"),
    "phone class": ("identity", "same phone class or not (generated speech, silence excluded)"),
    "energy": ("distance", "|difference in energy|, dB"),
    "source": ("identity", "speech, music or noise"),
    "voice": ("identity", "same speaker, instrument or noise colour"),
}


class RsaError(ValueError):
    """Embeddings of other stimuli, or of another number of them, than the comparison was asked for."""


# ----------------------------------------------------------------------------------------------------------------
# Stimuli


@dataclass
class StimulusSet:
    """The shared stimuli: tokens inside equal-length clips of utterances no model trained on.

    Attributes:
        clips: one row per clip (``clip``, ``utt_id``, ``domain``, ``source``, ``voice``, ``start_token``).
        labels: one row per stimulus: its ``clip``, ``position`` (token within the clip), the token's corpus labels,
            and ``semitone`` (MIDI pitch of a note, or of voiced speech's f0; NaN otherwise).
        audio: ``(n_clips, clip_samples)`` float32, 16 kHz.
        clip_tokens: tokens per clip.
    """

    clips: pd.DataFrame
    labels: pd.DataFrame
    audio: np.ndarray
    clip_tokens: int
    info: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A short hash of the clips, positions and audio: embeddings are cached under it."""
        hasher = hashlib.sha256(json.dumps([self.clips[["utt_id", "start_token"]].values.tolist(),
                                            self.labels[["clip", "position"]].values.tolist(),
                                            self.clip_tokens, RSA_VERSION]).encode())
        hasher.update(np.ascontiguousarray(self.audio[:, ::97]).tobytes())
        return hasher.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, clips) -> StimulusSet:
        """The stimuli of some clips (by clip number), renumbered."""
        clips = list(clips)
        renumber = {old: new for new, old in enumerate(clips)}
        labels = self.labels[self.labels["clip"].isin(clips)].copy()
        labels["clip"] = labels["clip"].map(renumber)
        table = self.clips.set_index("clip").loc[clips].reset_index()
        table["clip"] = np.arange(len(clips))
        return StimulusSet(table, labels.reset_index(drop=True), self.audio[clips], self.clip_tokens, dict(self.info))


def stimulus_summary(stimuli: StimulusSet) -> pd.DataFrame:
    """Per (domain, source): stimuli, clips, voices, and the stimuli with a pitch and with a phone."""
    labels = stimuli.labels
    phone = labels["phone"].fillna("").astype(str)
    return labels.assign(with_pitch=labels["semitone"].notna(), with_phone=~phone.isin(["", "sil"])).groupby(
        ["domain", "source"]).agg(stimuli=("clip", "size"), clips=("clip", "nunique"), voices=("voice", "nunique"),
                                  with_pitch=("with_pitch", "sum"), with_phone=("with_phone", "sum"))


def _semitones(labels: pd.DataFrame) -> np.ndarray:
    """MIDI pitch of music notes; of voiced speech, 69 + 12 log2(f0 / 440); NaN elsewhere."""
    midi = labels["midi_pitch"].to_numpy(dtype=float)
    f0 = labels["f0_hz"].to_numpy(dtype=float)
    voiced = labels["voiced"].to_numpy(dtype=bool) & (f0 > 0)
    speech = np.where(voiced, 69 + 12 * np.log2(np.where(voiced, f0, 440.0) / 440.0), np.nan)
    return np.where(np.isfinite(midi), midi, np.where(labels["source"].to_numpy() == "speech", speech, np.nan))


def build_stimuli(tokens: TokenSet, corpus, plan: dict | None = None, clip_tokens: int = 64, per_clip: int = 12,
                  splits=("test", "heldout"), seed: int = 0) -> StimulusSet:
    """Choose the shared stimuli: ``plan[(domain, source)]`` clips each, voices taken in turn, ``per_clip`` tokens
    per clip after :data:`WARMUP_TOKENS` (labelled ones first: phones of speech, notes of music).

    Args:
        tokens: the profile's tokens (labels per token).
        corpus: the :class:`~wmlib.data.corpus.Corpus` (or anything with ``audio(utt_id)``) for the waveforms.
        plan: clips per ``(domain, source)`` (default :data:`BOOK_PLAN`).
        clip_tokens: tokens per clip (64 = 2.56 s, the world model's training window).
        per_clip: stimuli per clip.
        splits: where utterances come from (never the training split).
        seed: the choice of utterances, clip starts and tokens.
    """
    plan = dict(BOOK_PLAN if plan is None else plan)
    assert "train" not in splits, "stimuli come from utterances no model trained on"
    assert WARMUP_TOKENS + per_clip <= clip_tokens, f"{per_clip} stimuli after {WARMUP_TOKENS} tokens need longer clips"
    rng = np.random.default_rng(seed)
    labels = tokens.labels
    lengths = labels.groupby("utt_id", sort=False).size()
    utterances = labels.drop_duplicates("utt_id").set_index("utt_id")
    utterances = utterances[utterances["split"].isin(splits)].assign(tokens=lengths)
    clips, rows = [], []
    for (domain, source), count in plan.items():
        pool = utterances[(utterances["domain"] == domain) & (utterances["source"] == source)
                          & (utterances["tokens"] >= clip_tokens)]
        if len(pool) < count:
            raise RsaError(f"{count} clips of {domain} {source} asked for, but only {len(pool)} utterances of "
                           f"{clip_tokens}+ tokens in {', '.join(splits)}")
        by_voice = {voice: list(rng.permutation(group.index.to_numpy()))
                    for voice, group in pool.groupby("voice", sort=True)}
        chosen = []
        while len(chosen) < count:  # voices in turn: as many voices as the plan allows
            for voice in list(by_voice):
                if by_voice[voice] and len(chosen) < count:
                    chosen.append(by_voice[voice].pop())
        for utt_id in chosen:
            start = int(rng.integers(0, utterances.loc[utt_id, "tokens"] - clip_tokens + 1))
            clip = len(clips)
            clips.append({"clip": clip, "utt_id": utt_id, "domain": domain, "source": source,
                          "voice": utterances.loc[utt_id, "voice"], "start_token": start})
            window = labels[(labels["utt_id"] == utt_id)
                            & labels["token"].between(start + WARMUP_TOKENS, start + clip_tokens - 1)]
            phone = window["phone"].fillna("").astype(str)
            labelled = (np.isfinite(window["midi_pitch"].to_numpy(dtype=float)) if source == "music"
                        else ((phone != "") & (phone != "sil")).to_numpy() if source == "speech"
                        else np.ones(len(window), bool))
            order = np.concatenate([rng.permutation(np.flatnonzero(labelled)),
                                    rng.permutation(np.flatnonzero(~labelled))])
            picked = window.iloc[np.sort(order[:per_clip])]
            rows.append(picked.assign(clip=clip, position=picked["token"].to_numpy() - start))
    table = pd.concat(rows, ignore_index=True)
    table["semitone"] = _semitones(table)
    clips = pd.DataFrame(clips)
    samples = clip_tokens * tokens.config.token_samples
    audio = np.stack([corpus.audio(row.utt_id)[row.start_token * tokens.config.token_samples:][:samples]
                      for row in clips.itertuples()]).astype(np.float32)
    if audio.shape[1] != samples:
        raise RsaError(f"clips of {samples} samples expected, got {audio.shape[1]}")
    return StimulusSet(clips, table, audio, clip_tokens, {"seed": seed, "plan": {f"{d} {s}": n for (d, s), n in
                                                                                   plan.items()}})


def book_stimuli(profile: str | None = None, seed: int = 0) -> StimulusSet:
    """The book's stimulus set (:data:`BOOK_PLAN`) of ``profile``; under ``tiny`` a plan its small corpus can fill."""
    from wmlib.data.corpus import build_corpus
    from wmlib.data.features import load_tokens
    from wmlib.data.profiles import get_profile

    name = get_profile(profile).name
    tokens = load_tokens(name, progress=False)
    if name == "tiny":  # the tests' corpus: a few clips of each kind that it has
        plan = {("generated", "speech"): 3, ("generated", "music"): 3, ("generated", "noise"): 1,
                ("real", "music"): 1}
        return build_stimuli(tokens, build_corpus(name, progress=False), plan, 32, 6, seed=seed)
    return build_stimuli(tokens, build_corpus(name, progress=False), BOOK_PLAN, 64, 12, seed=seed)


# ----------------------------------------------------------------------------------------------------------------
# Embeddings on the stimuli


def embed_stimuli(encoder: HearModel, stimuli: StimulusSet, profile: str | None = None, cache: bool = True,
                  batch: int = 8) -> dict[str, np.ndarray]:
    """Every layer of ``encoder`` at the stimuli: ``{layer: (n_stimuli, D)}`` float32.

    The encoder hears each whole clip (HEAR ``layer_embeddings``), its frames are averaged into the clip's 40 ms
    tokens (:func:`~wmlib.analysis.hear_api.to_token_grid`), and the stimuli's tokens are read.  Cached under
    ``<data>/<profile>/rsa/`` by the encoder's identity and the stimulus set.
    """
    from wmlib.data.profiles import data_root, get_profile

    identity = getattr(encoder, "identity", None) or f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    key = hashlib.sha256(json.dumps([identity, encoder.name, list(encoder.layers), stimuli.key,
                                     RSA_VERSION]).encode()).hexdigest()[:20]
    path = data_root() / get_profile(profile).name / "rsa" / f"{key}.npz"
    if cache and path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            return {name: saved[name] for name in encoder.layers}
    if encoder.sample_rate != FeatureConfig().sample_rate:
        raise GridError(f"{encoder.name} takes {encoder.sample_rate} Hz; the stimuli are 16 kHz (resample inside "
                        "the encoder)")
    grids: dict[str, list] = {}
    for first in range(0, len(stimuli.audio), batch):
        layers, timestamps = encoder.layer_embeddings(stimuli.audio[first : first + batch])
        for name in encoder.layers:
            grids.setdefault(name, []).extend(to_token_grid(sound, stamps, stimuli.clip_tokens)
                                              for sound, stamps in zip(layers[name], timestamps))
    clip, position = stimuli.labels["clip"].to_numpy(), stimuli.labels["position"].to_numpy()
    result = {name: np.stack(per_clip)[clip, position].astype(np.float32) for name, per_clip in grids.items()}
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            np.savez(handle, **result)
    return result


# ----------------------------------------------------------------------------------------------------------------
# RDMs


def rdm(embeddings: np.ndarray) -> np.ndarray:
    """``(n, D)`` -> the ``(n, n)`` RDM ``1 - Pearson`` between rows (rsatoolbox ``correlation``), stimulus order."""
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) < 3:
        raise RsaError(f"embeddings must be (n_stimuli >= 3, D); got {embeddings.shape}")
    flat = embeddings.std(axis=1) == 0  # a constant row has no correlation: give it tiny noise, deterministically
    if flat.any():
        embeddings = embeddings.copy()
        embeddings[flat] += np.random.default_rng(0).normal(0, 1e-9, (flat.sum(), embeddings.shape[1]))
    return calc_rdm(Dataset(embeddings), method="correlation").get_matrices()[0]


def label_rdms(labels: pd.DataFrame) -> dict[str, np.ndarray]:
    """The label models of :data:`LABEL_MODELS`: ``name -> (n, n)`` dissimilarities, NaN where a label is undefined."""
    def distance(values):
        return np.abs(values[:, None] - values[None, :])

    def identity(values, defined):
        same = (values[:, None] == values[None, :]).astype(float)
        return np.where(defined[:, None] & defined[None, :], 1.0 - same, np.nan)

    phone = labels["phone"].fillna("").astype(str).to_numpy()
    phone_class = labels["phone_class"].fillna("").astype(str).to_numpy()
    speech = (labels["source"].to_numpy() == "speech") & (phone != "") & (phone != "sil")
    models = {"pitch": distance(labels["semitone"].to_numpy(dtype=float)),
              "phone": identity(phone, speech), "phone class": identity(phone_class, speech),
              "energy": distance(labels["energy_db"].to_numpy(dtype=float)),
              "source": identity(labels["source"].astype(str).to_numpy(), np.ones(len(labels), bool)),
              "voice": identity(labels["voice"].astype(str).to_numpy(), np.ones(len(labels), bool))}
    for matrix in models.values():
        np.fill_diagonal(matrix, 0.0)
    return models


def to_rdms(matrices: dict[str, np.ndarray], labels: pd.DataFrame | None = None):
    """``{name: (n, n)}`` -> one rsatoolbox ``RDMs`` (descriptor ``name``; pattern descriptors from ``labels``)."""
    from rsatoolbox.rdm import RDMs

    names = list(matrices)
    stack = np.stack([matrices[name] for name in names])
    patterns = None
    if labels is not None:
        patterns = {column: labels[column].astype(str).tolist() for column in ("source", "voice", "utt_id")}
        patterns["index"] = list(range(len(labels)))
    return RDMs(stack, dissimilarity_measure="1 - Pearson", rdm_descriptors={"name": names},
                pattern_descriptors=patterns)


def compare_rsatoolbox(first: np.ndarray, second: np.ndarray, method: str = "spearman") -> float:
    """One comparison by rsatoolbox (``spearman``, ``corr_cov`` = whitened Pearson, ...) on the stimuli where both
    RDMs are defined."""
    from rsatoolbox.rdm import compare

    defined = (np.isfinite(first).sum(axis=1) > 1) & (np.isfinite(second).sum(axis=1) > 1)  # beyond the diagonal
    if method.endswith("_cov"):  # whitening needs a complete RDM: restrict to the stimuli both define
        first, second = first[np.ix_(defined, defined)], second[np.ix_(defined, defined)]
    value = compare(to_rdms({"a": first}), to_rdms({"b": second}), method=method)
    return float(np.asarray(value).ravel()[0])


# ----------------------------------------------------------------------------------------------------------------
# Fast bootstrap: comparisons under weights (a resample = how often each stimulus is drawn)


def half_weights(stimuli: StimulusSet, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``(1 + n_boot, n_stimuli)``: row 0 all ones, then one row per half-sample: half the clips of each (domain,
    source), drawn without replacement (weight 1; the others 0).

    Half-samples are the intervals of CKA: a bootstrap repeats clips, and repeated stimuli inflate CKA (their
    Gram entries are identical), while a half-sample repeats nothing.  Drawn without replacement, half of n clips
    vary about the full set by as much as the full set varies about the population (variance
    ``sigma^2 / (n/2) x (1 - 1/2) = sigma^2 / n``), so their spread, centred on their median, is put around the
    full-set value (:func:`summarise` with ``centre="median"``).
    """
    rng = np.random.default_rng(seed)
    clips = stimuli.clips
    draws = np.zeros((n_boot, len(clips)))
    for _, group in clips.groupby(["domain", "source"], sort=True):
        members = group["clip"].to_numpy()
        for row in range(n_boot):
            size = len(members) // 2 + (len(members) % 2 and rng.random() < 0.5)
            draws[row, rng.choice(members, size, replace=False)] = 1.0
    return np.vstack([np.ones(len(clips)), draws])[:, stimuli.labels["clip"].to_numpy()]


def stimulus_weights(stimuli: StimulusSet | pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``(1 + n_boot, n_stimuli)``: row 0 all ones (the observed set), then one row per resample of whole clips (each
    stimulus weighted by how often its clip was drawn)."""
    labels = stimuli.labels if isinstance(stimuli, StimulusSet) else stimuli
    index, weights = bootstrap_weights(labels["clip"].to_numpy(), n_boot, seed)
    return weights[:, index]


class ClipBootstrap:
    """Sums over stimulus pairs under resamples of whole clips, computed on clip-by-clip block sums.

    A resample gives each clip a count c (row b of ``weights``, the same for every stimulus of the clip).  A sum over
    pairs ``sum_{i != j} w_i w_j M_ij`` then depends on M only through its block sums ``S_kl`` (the sum of M over
    the pairs of clip k with clip l), so 1,000 resamples cost one ``(clips x clips)`` contraction each.  Pairs
    between two copies of one clip are left out: a clip drawn c times brings c copies of its own pairs, but the
    c (c - 1) pairs between its copies are not new pairs of stimuli (rsatoolbox leaves out the pairs between copies
    of one stimulus for the same reason); left in, they would weigh the pairs within a clip (same voice, same
    source) twice as much as in the data.

    Args:
        weights: ``(B, n_stimuli)``, constant within each group.
        groups: the clip of each stimulus (default: each stimulus its own).
        rank_cache: a dict shared between instances to rank each RDM once per set of defined pairs (the RDMs must
            stay alive while it is used: it is keyed by their identity).
    """

    def __init__(self, weights: np.ndarray, groups: np.ndarray | None = None, rank_cache: dict | None = None):
        self.rank_cache = rank_cache
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if groups is None:
            groups = np.arange(weights.shape[1])
        if len(groups) != weights.shape[1]:
            raise RsaError(f"weights over {weights.shape[1]} stimuli but {len(groups)} group labels")
        _, self.groups = np.unique(groups, return_inverse=True)
        n_groups = self.groups.max() + 1
        self.indicator = np.zeros((len(self.groups), n_groups))  # (n, K)
        self.indicator[np.arange(len(self.groups)), self.groups] = 1.0
        first = np.array([np.flatnonzero(self.groups == g)[0] for g in range(n_groups)])
        self.counts = weights[:, first]  # (B, K): how often each clip was drawn
        if not np.allclose(weights, self.counts[:, self.groups]):
            raise RsaError("bootstrap weights must be the same for every stimulus of a clip")
        self.excess = self.counts**2 - self.counts  # pairs between copies of one clip, per pair of the clip
        self.n = len(self.groups)

    def blocks(self, matrix: np.ndarray) -> np.ndarray:
        """``(K, K)`` block sums of an ``(n, n)`` matrix."""
        return self.indicator.T @ matrix @ self.indicator

    def pair_sum(self, matrix: np.ndarray) -> np.ndarray:
        """``(B,)``: the sum over pairs of distinct stimuli (M's diagonal must be zero), per resample."""
        blocks = self.blocks(matrix)
        return np.einsum("bk,kl,bl->b", self.counts, blocks, self.counts) - self.excess @ np.diagonal(blocks)

    def ranks(self, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """:func:`_ranks`, remembered in ``rank_cache`` when there is one."""
        if self.rank_cache is None:
            return _ranks(matrix, mask)
        key = (id(matrix), hashlib.sha1(np.packbits(mask).tobytes()).hexdigest())
        kept = self.rank_cache.get(key)
        if kept is None or kept[0] is not matrix:
            kept = self.rank_cache[key] = (matrix, _ranks(matrix, mask).astype(np.float32))  # ranks < 2^24: exact
        return kept[1].astype(np.float64)

    def spearman(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Spearman between two RDMs per resample (see :func:`weighted_spearman`)."""
        if first.shape != second.shape or first.shape[0] != self.n:
            raise RsaError(f"RDMs {first.shape} and {second.shape} with weights over {self.n} stimuli")
        mask = np.isfinite(first) & np.isfinite(second)
        np.fill_diagonal(mask, False)
        a, b = self.ranks(first, mask), self.ranks(second, mask)
        count = self.pair_sum(mask.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample without a defined pair: NaN
            mean_a, mean_b = self.pair_sum(a) / count, self.pair_sum(b) / count
            cov = self.pair_sum(a * b) / count - mean_a * mean_b
            var_a = self.pair_sum(a * a) / count - mean_a**2
            var_b = self.pair_sum(b * b) / count - mean_b**2
            return cov / np.sqrt(var_a * var_b)

    def cka(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Linear CKA between every pair of representations per resample: ``(B, E, E)``.

        ``HSIC_w(K, L) = tr(K P L P)`` with ``P = diag(w) - w w^T`` (w the resample's counts per stimulus, summing
        to 1; K, L the Gram matrices) is linear CKA's HSIC on the resampled set with each stimulus repeated as often
        as drawn; expanded, ``w^T (K∘L) w - 2 sum_i w_i (Kw)_i (Lw)_i + (w^T K w)(w^T L w)``, each term through
        block sums.
        """
        grams = []
        for name, array in features.items():
            array = np.asarray(array, dtype=np.float64)
            if array.ndim != 2 or array.shape[0] != self.n:
                raise RsaError(f"{name}: features {array.shape} but weights over {self.n} stimuli")
            array = array - array.mean(axis=0)  # centring is P's job; this only keeps the numbers small
            grams.append(array @ array.T)  # (n, n)
        total = self.counts @ np.bincount(self.groups).astype(np.float64)  # (B,): stimuli drawn
        w_groups = self.counts / total[:, None]  # (B, K): the weight of each stimulus of clip k
        rows = np.stack([gram @ self.indicator for gram in grams])  # (E, n, K): row sums over each clip
        kw = np.einsum("enk,bk->ben", rows, w_groups)  # (B, E, n): K w
        w_stimuli = w_groups[:, self.groups]  # (B, n)
        wkw = np.einsum("ben,bn->be", kw, w_stimuli)  # (B, E): w^T K w
        cross = np.einsum("ben,bn,bfn->bef", kw, w_stimuli, kw)  # (B, E, E): sum_i w_i (Kw)_i (Lw)_i
        hsic = np.empty_like(cross)
        for e, first in enumerate(grams):
            for f in range(e, len(grams)):
                quad = np.einsum("bk,kl,bl->b", w_groups, self.blocks(first * grams[f]), w_groups)  # w^T (K∘L) w
                hsic[:, e, f] = hsic[:, f, e] = quad - 2 * cross[:, e, f] + wkw[:, e] * wkw[:, f]
        diag = np.sqrt(np.clip(np.diagonal(hsic, axis1=1, axis2=2), 1e-30, None))  # (B, E)
        return hsic / (diag[:, :, None] * diag[:, None, :])


def _ranks(matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The upper-triangle entries under ``mask`` ranked (ties averaged), mirrored; 0 elsewhere."""
    from scipy.stats import rankdata

    upper = np.triu(mask, 1)
    ranked = np.zeros_like(matrix, dtype=np.float64)
    ranked[upper] = rankdata(matrix[upper])
    return ranked + ranked.T


def weighted_spearman(first: np.ndarray, second: np.ndarray, weights: np.ndarray,
                      groups: np.ndarray | None = None) -> np.ndarray:
    """Spearman between two RDMs under each row of ``weights``: ``(B,)``.

    Pairs (i, j), i != j, count ``w_i w_j`` times, except pairs between two copies of one clip (``groups``: the clip
    of each stimulus; see :class:`ClipBootstrap`); pairs where either RDM is NaN are left out.  With unit weights
    this is exactly Spearman between the RDMs' upper triangles; under a resample it is the weighted Pearson of the
    full set's ranks.
    """
    if first.shape != second.shape or first.shape[0] != np.shape(weights)[-1]:
        raise RsaError(f"RDMs {first.shape} and {second.shape} with weights over {np.shape(weights)[-1]} stimuli")
    return ClipBootstrap(weights, groups).spearman(first, second)


def cka_matrix(features: dict[str, np.ndarray], weights: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Linear CKA (Kornblith et al., 2019) between every pair of representations under each row of ``weights``
    (``groups``: the clip of each stimulus when weights resample clips).

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K = X X^T`` of features centred over the stimuli.

    Returns:
        ``(B, E, E)`` for the ``E`` representations in ``features``' order.
    """
    return ClipBootstrap(weights, groups).cka(features)


def summarise(values: np.ndarray, level: float = 0.95, centre: str | None = None) -> tuple[float, float, float]:
    """``(observed, low, high)`` from row 0 (observed) and the resamples after it: the percentile interval of a
    bootstrap, or with ``centre="median"`` (half-samples, :func:`half_weights`) the resamples' spread about their
    median put around the observed value."""
    values = np.asarray(values, dtype=float)
    rest = values[1:][np.isfinite(values[1:])]
    if len(rest) == 0:
        return float(values[0]), np.nan, np.nan
    low, high = np.quantile(rest, [(1 - level) / 2, (1 + level) / 2])
    if centre == "median":
        shift = values[0] - np.median(rest)
        low, high = low + shift, high + shift
    return float(values[0]), float(low), float(high)


def permutation_null(first: np.ndarray, second: np.ndarray, n_perm: int = 200, seed: int = 0) -> np.ndarray:
    """Spearman between ``first`` and ``second`` with the stimuli of ``second`` shuffled, ``n_perm`` times."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    upper = np.triu_indices(len(first), 1)
    x = first[upper]
    x_ranks = rankdata(x) if np.isfinite(x).all() else None  # reused whenever every pair is defined
    values = []
    for _ in range(n_perm):
        order = rng.permutation(len(second))
        y = second[np.ix_(order, order)][upper]
        keep = np.isfinite(x) & np.isfinite(y)
        ranks = x_ranks if x_ranks is not None and keep.all() else rankdata(x[keep])
        values.append(np.corrcoef(ranks, rankdata(y[keep]))[0, 1])
    return np.asarray(values)
