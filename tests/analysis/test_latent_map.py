"""The latent map's data: whole utterances of every source, a 2-D point per token; and its HTML: audio embedded
once per utterance, every point's player data present."""
import numpy as np
import pandas as pd

from wmlib.analysis.latent_map import latent_map, map_utterances
from wmlib.book.latent_map import latent_map_figure, latent_map_html


def labels_of(utterances=12, tokens=25):
    sources = ["speech", "music", "noise"]
    return pd.DataFrame([{"utt_id": f"u{u:02d}", "source": sources[u % 3], "voice": f"v{u % 4}", "start_s": 0.04 * t,
                          "end_s": 0.04 * (t + 1), "phone": "aa" if u % 3 == 0 else "", "energy_db": -20.0,
                          "midi_pitch": 60.0 + t % 5 if u % 3 == 1 else np.nan}
                         for u in range(utterances) for t in range(tokens)])


def test_map_takes_whole_utterances_from_every_source():
    labels = labels_of()
    rows = map_utterances(labels, max_points=100, seed=0)
    chosen = labels.iloc[rows]
    assert set(chosen["source"]) == {"speech", "music", "noise"}
    assert (chosen.groupby("utt_id").size() == 25).all() and 100 <= len(rows) < 125
    assert not np.array_equal(rows, map_utterances(labels, max_points=100, seed=1))


def test_points_separate_planted_clusters_and_the_html_carries_the_audio():
    labels = labels_of()
    rng = np.random.default_rng(0)
    centres = {"speech": 0.0, "music": 8.0, "noise": -8.0}
    features = np.array([centres[s] for s in labels["source"]])[:, None] + rng.normal(size=(len(labels), 8))
    points = latent_map(features, labels, max_points=150, n_neighbors=10)
    assert {"x", "y", "row"} <= set(points.columns) and np.isfinite(points[["x", "y"]]).all().all()
    centre = points.groupby("source")[["x", "y"]].mean()
    spread = points.groupby("source")[["x", "y"]].std().to_numpy().max()
    assert np.linalg.norm(centre.loc["music"] - centre.loc["noise"]) > 2 * spread
    figure = latent_map_figure(points)
    assert len(figure.data) == 4 and [t.visible for t in figure.data] == [True, False, False, False]
    clips = figure.data[0].customdata
    assert clips.shape == (len(points), 3) and set(clips[:, 0]) == set(range(points["utt_id"].nunique()))
    audio = {utt: 0.1 * np.sin(np.arange(16_000) / 10.0) for utt in points["utt_id"].unique()}
    html = latent_map_html(points, audio).data
    assert html.count("data:audio/ogg;base64,") == points["utt_id"].nunique()
    assert 'class="wm-latent-player"' in html and "plotly-graph-div" in html
