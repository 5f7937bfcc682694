"""No number the build computes is typed into the book's prose: every result is glued from the cell that made it.

The scan reads the prose of every page (not code cells, inline code, math, links, glue roles or directive options)
and fails on any number outside a short allow-list: years of citations, and the fixed sizes of the setup that the
text explains (40 ms tokens, 64 mel bands, 256 candidates, ...), each with the reason it is a constant, not a
result.  A finding typed by hand ("top-1 0.52") fails it."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "chapters").glob("*.md")) + [ROOT / "intro.md"]

#: number -> why it is a fixed size of the setup, not something a build measures
ALLOWED = {
    "0": "zero as a value (step 0, an interval that excludes 0, an F0 of 0)", "1": "one (1 − Pearson, T = 1)",
    "2": "two (a 2-core machine, ± 2 semitones, DreamerV2)", "3": "three (DreamerV3)", "4": "four tokens",
    "5": "free nats of the RSSM", "9": "a chapter number", "10": "10 ms hop", "16": "16 kHz; 16 × 16 categoricals",
    "25": "25 ms frames; 25 tokens a second", "32": "principal components kept", "40": "the 40 ms token",
    "45": "MIDI note the male voices were set to", "50": "50 cents", "52": "MIDI note of a raised voice",
    "54": "MIDI note of a raised voice", "64": "64 mel bands; 64-token windows", "95": "95% intervals",
    "100": "−100 dB floor; 100 acoustic units", "110": "110 Hz", "160": "160 ms of context", "165": "165 Hz",
    "185": "185 Hz", "250": "250 tokens in ten seconds", "255": "255 distractors", "256": "256 candidates; width 256",
    "512": "the RSSM's deterministic state", "640": "640 ms of context", "1,023": "in-batch distractors",
    "1,024": "in-batch tokens", "2,000": "tokens per probe", "8,192": "the dream's candidate bank",
    "16,000": "sample rate", "62,500": "pairs of 250 tokens", "160,000": "samples in ten seconds", "2.56": "a window",
    "2.6": "2.6 × 10¹⁰ pairs", "0.5": "KL balance scale", "0.1": "KL balance scale; dropout",
    "0.2": "an inpainting gap (s)", "0.8": "an exercise's R² threshold", "1.52": "60% of a window (s)", "60": "60%",
    "8": "8 kHz telephone audio", "1,300": "the book's training steps (a setting)",
    "8,000": "the long schedule's steps (a setting)",
    "0.02": "an exercise's tolerance", "0.03": "an exercise's tolerance (an interval's ends)",
    "0.05": "an exercise's tolerance (dB)", "0.3": "an exercise's tolerance (dB)", "10.1": "an exercise's number",
    "15": "tokens of past an exercise stacks", "600": "training windows of the linear AR (a setting)",
}
YEAR = re.compile(r"^(19|20)\d\d$")


def prose(text: str):
    """``(line number, text)`` of the prose: outside front matter, code and directive blocks' options."""
    lines = text.split("\n")
    start = lines[1:].index("---") + 2 if text.startswith("---") else 0
    fence = None
    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence = stripped  # an opening fence: code cells are skipped whole, admonitions are prose
                continue
            fence = None
            continue
        if fence is not None and (fence.startswith("```{code-cell}") or fence == "```" or stripped.startswith(":")):
            continue
        yield number, line


def numbers(line: str) -> list[str]:
    line = re.sub(r"\{[a-z:]+\}`[^`]*`", " ", line)  # roles (glue, term, cite)
    line = re.sub(r"`[^`]*`", " ", line)  # inline code
    line = re.sub(r"\$[^$]*\$", " ", line)  # math
    line = re.sub(r"\]\([^)]*\)", "]", line)  # link targets
    line = re.sub(r"^\s*\d+\.\s", " ", line)  # an ordered list's item number
    line = re.sub(r"\b[A-Za-z]+\d+[A-Za-z0-9]*\b", " ", line)  # names with digits (DreamerV3, F0, tokens-v2)
    return [n.rstrip(".,") for n in re.findall(r"\d[\d,.]*\d|\d", line)]


def typed_numbers(path: Path) -> list[str]:
    found = []
    for number, line in prose(path.read_text()):
        for value in numbers(line):
            if value not in ALLOWED and not YEAR.match(value):
                found.append(f"{path.name}:{number}: {value} in “{line.strip()[:100]}”")
    return found


def test_no_computed_number_is_typed_into_the_prose():
    found = [entry for page in PAGES for entry in typed_numbers(page)]
    assert not found, "numbers typed into the prose (glue them, or allow a setup constant with its reason):\n" + \
        "\n".join(found)


def test_the_scan_sees_a_typed_result_and_skips_code_glue_and_math(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\nThe model scores 0.523 on the test.\n\n```{code-cell} ipython3\nx = 0.777\n```\n\n"
                    "Glued: {glue:text}`key:.3f`, math $x^{12}$, code `0.999`, setup 40 ms, year 2019.\n\n"
                    "```{admonition} Takeaways\n:class: tip\n- typed 0.61 here\n```\n")
    found = typed_numbers(page)
    assert len(found) == 2 and "0.523" in found[0] and "0.61" in found[1], found
