"""A 2-D map of a representation (UMAP), one point per token, with the token's labels: the data of the book's
interactive latent map (:func:`wmlib.book.latent_map.latent_map_html` draws it and plays each point's audio).

Used by the chapter "Phones, sources and voices".
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .representations import utterance_slices


def map_utterances(labels: pd.DataFrame, max_points: int = 3000, seed: int = 0) -> np.ndarray:
    """Row indices of whole utterances, chosen at random (``seed``) in turn from each source, until ``max_points``
    tokens: a map of every kind of sound whose points can each be played in their utterance."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list] = {}
    for _, rows in utterance_slices(labels):
        by_source.setdefault(labels["source"].iloc[rows.start], []).append(rows)
    queues = {source: [slices[i] for i in rng.permutation(len(slices))] for source, slices in by_source.items()}
    chosen, total = [], 0
    while total < max_points and any(queues.values()):
        for source in sorted(queues):
            if queues[source] and total < max_points:
                rows = queues[source].pop()
                chosen.append(np.arange(rows.start, rows.stop))
                total += rows.stop - rows.start
    return np.sort(np.concatenate(chosen))


def latent_map(features: np.ndarray, labels: pd.DataFrame, max_points: int = 3000, seed: int = 0,
               n_neighbors: int = 15, min_dist: float = 0.1) -> pd.DataFrame:
    """UMAP of ``features`` (standardised) for whole utterances of every source (:func:`map_utterances`).

    Returns:
        The chosen rows of ``labels`` with columns ``x, y`` (the map) and ``row`` (the index into ``features``).
    """
    import umap
    from sklearn.preprocessing import StandardScaler

    rows = map_utterances(labels, max_points, seed)
    scaled = StandardScaler().fit_transform(np.asarray(features)[rows])
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": the seed is what we want
        warnings.filterwarnings("ignore", message=".*n_jobs.*")
        xy = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed).fit_transform(scaled)
    return labels.iloc[rows].reset_index(drop=True).assign(x=xy[:, 0], y=xy[:, 1], row=rows)
