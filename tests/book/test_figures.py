"""``python -m wmlib figures``: a chapter's figures regenerated to files, from the same calls as the book."""
import shutil

import plotly.io as pio
import pytest

from wmlib import cli
from wmlib.book.figures import FigureExportError, chapter_path, export_figures


def test_chapters_are_found_by_number_name_or_file():
    assert chapter_path("7").name == "07_dreams.md"
    assert chapter_path("dreams") == chapter_path("07_dreams") == chapter_path("chapters/07_dreams.md")
    with pytest.raises(FigureExportError, match="no chapter 'nonsense'; the chapters are 01_sound_as_tokens"):
        chapter_path("nonsense")


def test_a_chapters_figures_become_files(tmp_path, tiny_tokens, capsys):
    stale = tmp_path / "01_sound_as_tokens-99.html"
    stale.write_text("from an older export")
    written = export_figures("1", tmp_path, profile="tiny", png=shutil.which("chromium") is not None)
    html = sorted(tmp_path.glob("01_sound_as_tokens-*.html"))
    assert len(html) >= 3 and not stale.exists()
    for path in html:
        figure = pio.read_json(path.with_suffix(".json"))
        assert figure.data, f"{path.name}: an empty figure"
        assert "plotly.min.js" in path.read_text()[:5000]  # offline: the script beside it, not a CDN
    assert (tmp_path / "plotly.min.js").is_file()
    if shutil.which("chromium"):  # the tests' machine has it (make test installs it)
        pngs = sorted(tmp_path.glob("01_sound_as_tokens-*.png"))
        assert len(pngs) == len(html) and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert set(written) >= set(html)
    assert cli.main(["figures", "--chapter", "nope", "--out", str(tmp_path)]) == 2
    assert "no chapter 'nope'" in capsys.readouterr().err


def test_figures_shown_together_are_one_output_in_the_book_and_several_in_jupyter(monkeypatch):
    """A gallery cell of the book has one output (so that myst-nb numbers it as one figure), with every figure and
    player in order and nothing from a CDN; in Jupyter each item is shown in turn."""
    import IPython.display
    import numpy as np
    import plotly.graph_objects as go

    from wmlib.book import plots
    from wmlib.book.build import BOOK_BUILD_ENV

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setattr(go.Figure, "show", lambda figure, *args, **kwargs: shown.append(figure))
    items = [go.Figure(go.Scatter(y=[1, 2])), "a label", IPython.display.Audio(np.zeros(1600), rate=16_000),
             go.Figure(go.Bar(y=[3]))]
    monkeypatch.setenv(BOOK_BUILD_ENV, "1")
    plots.show_together(items)
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.HTML)
    page = shown[0].data
    assert page.count("Plotly.newPlot") == 2 and page.count("<audio") == 1 and "<p>a label</p>" in page
    assert page.index("Scatter".lower()) < page.index("a label") < page.index("<audio") < page.rindex("bar")
    assert "https://" not in page and "cdn" not in page.lower()
    shown.clear()
    monkeypatch.delenv(BOOK_BUILD_ENV)
    plots.show_together(items)
    assert shown == items
