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
