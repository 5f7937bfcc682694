"""Figures of the chapter "Representational similarity" on small tables: they draw, and say what they show."""
import numpy as np
import pandas as pd

from wmlib.book import rsa_figures


def pairs_of(matrix: np.ndarray, names: list[str]) -> pd.DataFrame:
    rows = []
    for i, first in enumerate(names):
        for j, second in enumerate(names):
            rows.append({"first": first, "second": second, "cka": matrix[i, j], "cka_low": matrix[i, j] - 0.1,
                         "cka_high": matrix[i, j] + 0.1})
    return pd.DataFrame(rows)


def test_mds_map_copes_with_a_non_euclidean_matrix_and_separates_close_labels():
    matrix = np.array([[1, 0.99, 0.2], [0.99, 1, 0.3], [0.2, 0.3, 1]])  # 1 - CKA is not a Euclidean distance
    figure = rsa_figures.mds_figure(pairs_of(matrix, ["a", "b", "c"]), {"a": "x", "b": "x", "c": "y"})
    first, second = figure.data
    assert np.isfinite(np.r_[first.x, first.y, second.x, second.y]).all()
    assert list(first.textposition) == ["top center", "bottom center"]  # a and b nearly coincide


def test_rdm_grid_sorts_stimuli_by_source_voice_and_pitch():
    labels = pd.DataFrame({"source": ["speech", "music", "music", "noise"], "voice": ["v", "b", "a", "n"],
                           "semitone": [np.nan, 60.0, 62.0, np.nan]})
    assert rsa_figures.rdm_order(labels).tolist() == [2, 1, 3, 0]
    matrix = np.arange(16.0).reshape(4, 4)
    figure = rsa_figures.rdm_grid_figure({"m": matrix, "n": matrix.T}, labels, every=1)
    assert len(figure.data) == 2 and "sorted by source, then voice, then pitch" in figure.layout.title.text


def test_encoder_matrix_puts_the_interval_in_the_hover():
    figure = rsa_figures.encoder_matrix_figure(pairs_of(np.array([[1, 0.5], [0.5, 1]]), ["a", "b"]), "cka")
    assert figure.data[0].customdata[0][1] == "0.500 [0.400, 0.600]"
