"""Shared fixtures: the ``tiny`` corpus and its tokens, built once per test session (seconds)."""
import pytest


@pytest.fixture(scope="session")
def tiny_corpus():
    from wmlib.data.corpus import build_corpus

    return build_corpus("tiny", progress=False)


@pytest.fixture(scope="session")
def tiny_tokens(tiny_corpus):
    from wmlib.data.features import load_tokens

    return load_tokens("tiny", progress=False)
