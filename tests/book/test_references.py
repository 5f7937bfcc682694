"""The book's references and glossary: every citation names an entry of references.bib, at least thirty works are
cited from the chapters, every term role names a glossary entry, and the glossary defines the terms the chapters
rely on.  (The built book's Sphinx run, with -W, fails on an unresolved citation or term as well; these checks say
which one without a build.)"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "chapters").glob("*.md")) + [ROOT / "intro.md"]
#: Terms the chapters use that a reader must be able to look up (the course issue's list and the book's own).
REQUIRED_TERMS = ("Encoder", "Prior", "Context", "Feature", "Free nats", "Unimix", "MDL", "RDM", "CKA", "HEAR",
                  "RSSM", "InfoNCE", "Token", "Log-mel", "Probe", "Control task", "Paired difference", "Random init",
                  "Sparse autoencoder", "TopK", "Dream", "Top-1 retrieval")


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), flags=re.M))


def roles(kind: str) -> list[tuple[str, str]]:
    """``(page, target)`` of every ``{kind}`` role in the pages; ``text <target>`` gives the target."""
    found = []
    for page in PAGES:
        for body in re.findall(r"\{" + kind + r"(?::[pt])?\}`([^`]*)`", page.read_text()):
            target = re.search(r"<([^>]*)>$", body)
            found.extend((page.name, key.strip()) for key in
                         ([target.group(1)] if target else body.split(",") if kind == "cite" else [body]))
    return found


def glossary_terms() -> set[str]:
    text = (ROOT / "glossary.md").read_text()
    block = text[text.index("```{glossary}"):]
    return {line.strip().lower() for line in block.splitlines()[1:] if line and not line.startswith((" ", "```"))}


def test_every_citation_is_in_the_bibliography_and_thirty_works_are_cited():
    keys, cited = bib_keys(), roles("cite")
    unknown = sorted({f"{page}: {key}" for page, key in cited if key not in keys})
    assert not unknown, unknown
    assert len({key for _, key in cited}) >= 30, sorted({key for _, key in cited})
    uncited = keys - {key for _, key in cited}
    assert not uncited, f"entries no page cites: {sorted(uncited)}"


def test_every_term_role_names_a_glossary_entry_and_the_glossary_has_the_book_terms():
    terms = glossary_terms()
    unknown = sorted({f"{page}: {term}" for page, term in roles("term") if term.lower() not in terms})
    assert not unknown, unknown
    missing = [term for term in REQUIRED_TERMS if term.lower() not in terms]
    assert not missing, missing
    linked = {term.lower() for _, term in roles("term")}
    unlinked = sorted({t.lower() for t in REQUIRED_TERMS} - linked)
    assert not unlinked, f"glossary terms no page links to: {unlinked}"


def test_the_checks_catch_a_wrong_key():
    assert "hafner2021dreamerv2" in bib_keys() and "no-such-key" not in bib_keys()
    assert "free nats" in glossary_terms() and "no such term" not in glossary_terms()
