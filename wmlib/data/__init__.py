"""Stage 1, data: audio in, the embedded corpus and real corpora, log-mel tokens with per-token labels.

``files`` (atomic writes) and ``audio`` (reading and checking audio) -> ``profiles`` (corpus sizes, voices,
instruments) -> the generators ``speech``, ``music``, ``noise`` (with ``phones``) -> ``corpus`` (the embedded
corpus, cached) and ``loaders`` (real corpora in their own formats) -> ``features`` (tokens and labels, cached).
"""
