"""Writing files atomically: every file ``wmlib`` writes (corpus, caches, checkpoints) goes through
:func:`atomic_write`, so an interrupted run never leaves a half-written file where a finished one is expected."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block finishes.

    Yields:
        The open temporary file (or, with ``mode=None``, its path, for writers that want a filename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a cache file should read like any other file
    try:
        if mode is None:
            yield Path(tmp)
        else:
            with open(tmp, mode) as handle:
                yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
