"""Every figure of a chapter, regenerated to files: ``python -m wmlib figures --chapter NAME --out DIR``.

The chapter is executed as the book executes it (same calls, same caches, the profile of ``$WMLIB_PROFILE``), with
one more plotly renderer switched on by :func:`setup_book_page`'s environment variable: every figure a cell shows is
written to ``DIR`` as ``<chapter>-<nn>.html`` (interactive, offline: plotly.js is written once beside them) and
``<chapter>-<nn>.json`` (the figure itself, for ``plotly.io.read_json``).  PNGs follow in one batch through Kaleido,
which drives a local Chrome or Chromium (``apt-get install chromium``); without one, the HTML and JSON stay and the
PNG step says why it was skipped.

So a figure in the book and its file come from the same ``wmlib`` call.  Used by ``python -m wmlib figures``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .build import BOOK_ROOT

FIGURES_ENV = "WMLIB_FIGURES_DIR"
PREFIX_ENV = "WMLIB_FIGURES_PREFIX"


class FigureExportError(ValueError):
    """An unknown chapter, or a chapter without figures."""


def chapter_path(name: str, book_root: Path = BOOK_ROOT) -> Path:
    """A chapter by number, name or file: ``7``, ``dreams``, ``07_dreams``, ``chapters/07_dreams.md``."""
    chapters = sorted((book_root / "chapters").glob("*.md"))
    wanted = Path(name).stem.lower()
    for path in chapters:
        number, _, title = path.stem.partition("_")
        if wanted in (path.stem.lower(), number, title.lower()) or (wanted.isdigit() and int(wanted) == int(number)):
            return path
    raise FigureExportError(f"no chapter {name!r}; the chapters are {', '.join(p.stem for p in chapters)}")


def export_renderer(folder: str | os.PathLike, prefix: str):
    """The plotly renderer that writes each shown figure to ``folder`` (used by :func:`setup_book_page`)."""
    import itertools

    from plotly.io._base_renderers import ExternalRenderer

    numbers = itertools.count(1)  # shared: plotly renders with a copy of the renderer each time

    class FigureFileRenderer(ExternalRenderer):
        def render(self, fig_dict):
            import plotly.graph_objects as go

            stem = Path(folder) / f"{prefix}-{next(numbers):02d}"
            figure = go.Figure(fig_dict)
            figure.write_json(stem.with_suffix(".json"))
            figure.write_html(stem.with_suffix(".html"), include_plotlyjs="directory", full_html=True)

    return FigureFileRenderer()


def export_figures(chapter: str, out: str | os.PathLike, profile: str | None = None, png: bool = True,
                   timeout: int = 1800) -> list[Path]:
    """Execute one chapter and write its figures to ``out``.

    Returns:
        The files written (HTML, JSON and, where Kaleido finds a browser, PNG).

    Raises:
        FigureExportError: an unknown chapter, or one that shows no figure.
        nbclient.exceptions.CellExecutionError: a cell failed (the message is its traceback).
    """
    import jupytext
    from nbclient import NotebookClient

    path = chapter_path(chapter)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{path.stem}-[0-9][0-9].*"):
        old.unlink()  # a figure the chapter no longer draws must not linger
    notebook = jupytext.read(path)
    saved = {key: os.environ.get(key) for key in (FIGURES_ENV, PREFIX_ENV, "WMLIB_PROFILE", "PYTHONPATH")}
    os.environ.update({FIGURES_ENV: str(out), PREFIX_ENV: path.stem, "PYTHONPATH": str(BOOK_ROOT)})
    if profile:
        os.environ["WMLIB_PROFILE"] = profile
    try:  # the kernel inherits this environment
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    figures = sorted(out.glob(f"{path.stem}-[0-9][0-9].json"))
    if not figures:
        raise FigureExportError(f"chapter {path.stem} shows no plotly figure")
    written = sorted(out.glob(f"{path.stem}-[0-9][0-9].*"))
    if png:
        written += write_pngs(figures)
    return written


def write_pngs(figures: list[Path]) -> list[Path]:
    """PNGs of figure JSON files in one Kaleido batch, with the installed plotly.js (nothing is fetched).

    Returns the PNGs written; prints why and returns ``[]`` where no browser is available.
    """
    import plotly
    import plotly.io as pio

    pio.defaults.plotlyjs = str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
    pio.defaults.mathjax = None
    targets = [path.with_suffix(".png") for path in figures]
    try:
        pio.write_images([pio.read_json(path) for path in figures], targets, width=1000, height=600, scale=1)
    except Exception as error:  # Kaleido raises its own types for a missing browser
        print(f"PNG export skipped ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
              "Kaleido needs Chrome or Chromium (`apt-get install chromium`). The HTML and JSON files are written.")
        return []
    return targets
