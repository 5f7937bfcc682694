"""Building the Jupyter Book: offline plotly.js, a cache that notices code changes, one call for CLI and tests.

Jupyter Book's execution cache keys on a notebook's text only, so an edit to ``wmlib`` (or another corpus profile)
would leave stale figures.  :func:`build_book` stamps the build with a hash of the package's source and the
profile and, when either changes, clears the caches so that every chapter is executed again.

Used by ``make book`` (``python -m wmlib book``) and by ``tests/book/test_book.py``.  The chapters read trained models,
so :func:`build_book` trains them first (:mod:`wmlib.model.runs`); a finished run is found, not retrained.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from wmlib.data.profiles import get_profile

BOOK_ROOT = Path(__file__).resolve().parents[2]
#: Set for the chapters :func:`build_book` executes: :func:`wmlib.book.plots.show_together` then emits one output.
BOOK_BUILD_ENV = "WMLIB_BOOK_BUILD"


def code_fingerprint() -> str:
    """Hash of every ``wmlib`` source file: what the chapters' outputs depend on besides their own text."""
    digest = hashlib.sha256()
    for path in sorted((BOOK_ROOT / "wmlib").rglob("*.py")):
        digest.update(path.relative_to(BOOK_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ship_plotly_js(book_root: Path = BOOK_ROOT) -> Path:
    """Copy the installed plotly's ``plotly.min.js`` into ``_static/`` (Jupyter Book adds it to every page)."""
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = book_root / "_static" / "plotly.min.js"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
    return target


def build_book(profile: str | None = None, output: Path | None = None, builder: str = "html",
               source: Path = BOOK_ROOT, train_models: bool = True) -> Path:
    """Train the book's models (:func:`wmlib.model.runs.train_book_models`; nothing to do once trained), then execute
    every chapter under ``profile`` and build the book; raise if any cell fails.

    Args:
        profile: corpus profile the chapters run on (exported as ``$WMLIB_PROFILE`` to their kernels).
        output: folder that receives ``_build/`` (default: the repository).
        builder: a Jupyter Book builder (``html``, ``singlehtml``, ...).
        source: the book's folder (``_config.yml``, ``_toc.yml``); tests point it at broken books.
        train_models: train the book's models first (the chapters read them).

    Returns:
        The folder of the built pages.

    Raises:
        subprocess.CalledProcessError: a cell failed or Sphinx warned (warnings are errors).
    """
    profile = get_profile(profile).name
    if train_models:
        from wmlib.model.runs import train_book_models

        start = time.perf_counter()
        train_book_models(profile)
        print(f"book models ({profile}) ready in {time.perf_counter() - start:.0f} s")
    output = Path(output or BOOK_ROOT)
    # Both caches go when the code or the profile changed: the executed notebooks (jupyter-cache) and Sphinx's
    # record of which pages are up to date (.doctrees), without which Sphinx would not even look at a chapter
    # whose text did not change, and would keep its old outputs.
    stale = [output / "_build" / ".jupyter_cache", output / "_build" / ".doctrees"]
    stamp = output / "_build" / "wmlib-stamp.json"
    expected = {"code": code_fingerprint(), "profile": profile}
    if (not stamp.exists() or json.loads(stamp.read_text()) != expected) and any(p.exists() for p in stale):
        print("wmlib or the profile changed since the last build: re-executing every chapter")
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
    ship_plotly_js(source)
    env = dict(os.environ, WMLIB_PROFILE=profile, PYTHONPATH=str(BOOK_ROOT), **{BOOK_BUILD_ENV: "1"})
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--builder", builder,
               "--path-output", str(output), "-W", "-n", "--keep-going"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(expected))
    print(f"book ({profile}) built in {time.perf_counter() - start:.0f} s: {output / '_build' / builder}")
    return output / "_build" / builder
