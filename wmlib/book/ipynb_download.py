"""A Sphinx extension of the book: each chapter's download menu offers the executed notebook (``.ipynb``) beside
its MyST source (``.md``) and the PDF print.

The book theme (sphinx-book-theme) adds the ``.ipynb`` entry only when a launch service (Binder, Colab, …) is
configured; this book configures none (it is read offline).  Before the theme draws its buttons, this copies the
notebook myst-nb executed for the page (``_build/jupyter_execute/<page>.ipynb``) into ``_sources/`` and names it in
the page's context, which is all the theme's download menu reads.

Enabled in ``_config.yml`` (``sphinx.extra_extensions``).
"""
from __future__ import annotations

import shutil
from pathlib import Path


def add_notebook_download(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context``: copy the page's executed notebook to ``_sources`` and set ``ipynb_source``."""
    if context.get("ipynb_source") or not str(context.get("sourcename", "")).endswith((".md", ".md.txt")):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():  # a page without code (the glossary) has no notebook
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("html-page-context", add_notebook_download, priority=400)  # before the theme's buttons (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
