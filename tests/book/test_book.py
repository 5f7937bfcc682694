"""The book builds under the tiny profile, fails on a failing cell, and renders in a real browser."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from wmlib.book.build import BOOK_ROOT, build_book

CHROMIUM = shutil.which("chromium")
CHAPTERS = sorted((BOOK_ROOT / "chapters").glob("*.md"))
#: Audio players a chapter shows at least (default 3); the probing chapters play sound only from the latent map.
MIN_PLAYERS = {"04_pitch_and_energy": 0, "05_phones_sources_and_voices": 0, "10_extending_the_book": 1,
               "11_representational_similarity": 0, "12_what_the_model_learned": 0, "13_what_the_build_costs": 0,
               "14_sparse_features": 0}
#: Plotly figures a chapter draws at least (default 5): the chapters of tables and code have fewer; the closing
#: chapter and the appendix paste what the others computed.
MIN_FIGURES = {"09_interventions": 3, "10_extending_the_book": 1, "12_what_the_model_learned": 0,
               "13_what_the_build_costs": 0, "14_sparse_features": 4}
#: Pages without code cells of their own (everything on them is glued from the chapters).
PASTED = {"12_what_the_model_learned", "13_what_the_build_costs"}


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, tiny_tokens):
    """The whole book, every chapter executed from scratch on the tiny corpus (fresh output folder, no cache)."""
    return build_book("tiny", output=tmp_path_factory.mktemp("book"))


def render(page: Path) -> BeautifulSoup:
    """The page's DOM after headless Chromium has run its scripts (plotly draws its SVG here)."""
    assert CHROMIUM, "Debian's chromium is needed for the browser check: apt-get install chromium (or make setup)"
    with tempfile.TemporaryDirectory() as profile_dir:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile_dir}",
             "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return BeautifulSoup(result.stdout, "html.parser")


def test_every_chapter_is_built(built_book):
    for chapter in CHAPTERS:
        assert (built_book / "chapters" / f"{chapter.stem}.html").exists(), chapter.name
    assert (built_book / "intro.html").exists()


@pytest.mark.parametrize("chapter", [c.stem for c in CHAPTERS])
def test_chapter_renders_cleanly_offline(built_book, chapter):
    """In a real browser, offline: every plotly figure drawn, audio players, math typeset by the shipped MathJax,
    and no warning, stderr or traceback in any cell's output."""
    page = built_book / "chapters" / f"{chapter}.html"
    source = page.read_text()
    assert "cdn.plot.ly" not in source and "plotly-latest" not in source, "plotly.js must come from _static/"
    assert "cdn.jsdelivr.net" not in source and "mathjax@" not in source, "MathJax must come from _static/"
    remote = re.findall(r'<script[^>]+src="(?:https?:)?//[^"]+"', source)
    assert not remote, f"{chapter}: scripts fetched from the network at view time: {remote[:3]}"
    assert (built_book / "_static" / "plotly.min.js").exists()
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").exists()
    dom = render(page)
    figures = dom.select("div.plotly-graph-div")
    assert len(figures) >= MIN_FIGURES.get(chapter, 5), f"{chapter}: only {len(figures)} plotly figures in the page"
    undrawn = [f.get("id") for f in figures if not f.select("svg.main-svg")]
    assert not undrawn, f"{chapter}: plotly figures that did not draw: {undrawn}"
    players = [p for p in dom.select("audio")  # the latent map's and the feature browser's players wait for a click
               if not {"wm-latent-player", "wm-feature-player"} & set(p.get("class", []))]
    assert len(players) >= MIN_PLAYERS.get(chapter, 3) and all(p.select("source") or p.get("src") for p in players)
    if chapter in PASTED:
        assert_glued(dom, chapter)
    else:
        assert_clean_outputs(dom, chapter)
    assert_math_typeset(dom, chapter)


#: The chapters that end with exercises (coursework/), two each.
EXERCISE_CHAPTERS = [c.stem for c in CHAPTERS if c.stem[:2] in {f"{n:02d}" for n in range(3, 12)}]


@pytest.mark.parametrize("chapter", [c.stem for c in CHAPTERS if c.stem not in PASTED])
def test_every_figure_is_numbered_captioned_and_cited(built_book, chapter):
    """Every plotly figure sits in a numbered figure with a caption, and the prose refers to each by its number."""
    dom = BeautifulSoup((built_book / "chapters" / f"{chapter}.html").read_text(), "html.parser")
    figures = dom.select("div.plotly-graph-div")
    loose = [f.get("id") for f in figures if f.find_parent("figure") is None]
    assert not loose, f"{chapter}: plotly figures outside a numbered figure: {loose}"
    cited = {a.get("href", "").split("#")[-1] for a in dom.select("a.reference")}
    for figure in dom.select("figure"):
        caption = figure.select_one("figcaption")
        assert caption is not None and caption.select_one("span.caption-number"), f"{chapter}: figure without a number"
        assert caption.get_text(" ").strip().startswith("Fig."), caption.get_text()
        assert len(caption.select_one("span.caption-text").get_text(strip=True)) > 20, f"{chapter}: a bare caption"
        names = {figure.get("id")} | {span.get("id") for span in figure.select("span[id]")}
        if figure.select_one("figcaption a.headerlink[href^='#fig-']"):  # the first figure of a cell bears the name
            assert names & cited, f"{chapter}: figure {names} is not referred to from the text"


@pytest.mark.parametrize("chapter", EXERCISE_CHAPTERS)
def test_the_exercises_render_and_no_solution_is_printed(built_book, chapter):
    dom = BeautifulSoup((built_book / "chapters" / f"{chapter}.html").read_text(), "html.parser")
    titles = [t.get_text(" ", strip=True) for t in dom.select("div.admonition p.admonition-title")]
    exercises = [t for t in titles if t.startswith("Exercise ")]
    assert len(exercises) >= 2, f"{chapter}: exercises {exercises}"
    stubs = {path.stem for path in (BOOK_ROOT / "coursework").glob(f"ch{chapter[:2]}_*.py")}
    text = dom.get_text(" ")
    assert all(f"coursework/{stub}.py" in text for stub in stubs), f"{chapter}: an exercise without its stub"
    assert_no_solution_code(text, chapter)


def assert_no_solution_code(text: str, page: str) -> None:
    """No reference solution in the page: at most two of its code lines (docstrings, imports and short lines
    aside) appear in the page's text."""
    import ast

    page_text = " ".join(text.split())
    for path in (BOOK_ROOT / "coursework" / "solutions").glob("*.py"):
        source = path.read_text()
        docstrings = {number for node in ast.walk(ast.parse(source))
                      if isinstance(node, (ast.Module, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
                      for number in range(node.body[0].lineno, node.body[0].end_lineno + 1)}
        printed = [code for number, code in enumerate((" ".join(line.split()) for line in source.splitlines()), 1)
                   if number not in docstrings and len(code) >= 40 and not code.startswith(("import ", "from ", "#"))
                   and code in page_text]
        # a solution may repeat two lines of its chapter's set-up (loading the model, its candidate bank)
        assert len(printed) < 3, f"{page} prints {len(printed)} lines of {path.name}: {printed}"


def test_no_student_page_prints_a_solution(built_book):
    for page in [*built_book.glob("*.html"), *(built_book / "chapters").glob("*.html")]:
        assert_no_solution_code(BeautifulSoup(page.read_text(), "html.parser").get_text(" "), page.name)


def assert_glued(dom: BeautifulSoup, page: str) -> None:
    """A page made of pasted numbers: every glue role resolved (Sphinx removes a missing one and warns, and the
    build fails on warnings), and something was pasted."""
    pasted = dom.select("span.pasted-text, div.output, .cell_output")
    assert pasted, f"{page}: nothing pasted"
    text = dom.get_text(" ")
    assert "{glue" not in text and "::" not in text, f"{page}: an unresolved glue role"


def assert_clean_outputs(dom: BeautifulSoup, page: str) -> None:
    outputs = dom.select("div.cell_output")
    assert outputs, f"{page}: no cell outputs found (did the page change its markup?)"
    assert not dom.select("div.cell_output .stderr, div.cell_output .traceback"), f"{page}: stderr in an output"
    for output in outputs:
        text = output.get_text(" ")
        assert "Warning" not in text and "Traceback" not in text, f"{page}: an output says: {text[:300]}"


def assert_math_typeset(dom: BeautifulSoup, page: str) -> None:
    maths = dom.select("span.math, div.math")
    untypeset = [m.get_text()[:60] for m in maths if not m.select("mjx-container")]
    assert not untypeset, f"{page}: math left as text: {untypeset}"
    for code in dom.select("pre, code, script, style"):
        code.decompose()  # code may hold backslashes and dollars of its own
    text = dom.get_text(" ")
    for raw in ("\\(", "\\[", "$$"):
        assert raw not in text, f"{page}: raw {raw} in the rendered text: ...{text[text.index(raw) - 80:][:160]}..."


def test_math_is_typeset_somewhere_and_the_intro_is_clean(built_book):
    chapters = [render(built_book / "chapters" / f"{chapter.stem}.html") for chapter in CHAPTERS]
    assert sum(len(dom.select("mjx-container")) for dom in chapters) >= 5, "no typeset math in the book"
    intro = render(built_book / "intro.html")
    assert_math_typeset(intro, "intro")
    assert_glued(intro, "intro")
    table = intro.select("table")[0].get_text(" ")
    for word in ("beats", "loses to", "not distinguishable"):  # every row carries a verdict
        if word in table:
            break
    else:
        raise AssertionError("the front page's findings table holds no verdict")


def test_the_checks_can_fail():
    """The clean-output and math checks see a warning, a traceback and math MathJax did not typeset."""
    warned = BeautifulSoup('<div class="cell_output"><pre>UserWarning: x</pre></div>', "html.parser")
    with pytest.raises(AssertionError, match="an output says"):
        assert_clean_outputs(warned, "page")
    raw = BeautifulSoup('<p><span class="math">\\(t\\)</span></p>', "html.parser")
    with pytest.raises(AssertionError, match="math left as text"):
        assert_math_typeset(raw, "page")
    dollars = BeautifulSoup("<p>$$x^2$$</p>", "html.parser")
    with pytest.raises(AssertionError, match="raw"):
        assert_math_typeset(dollars, "page")


def minimal_book(root: Path, cell: str) -> Path:
    """A book of one chapter holding ``cell``, with the real book's configuration."""
    book = root / "book"
    (book / "chapters").mkdir(parents=True)
    shutil.copy(BOOK_ROOT / "_config.yml", book)
    shutil.copy(BOOK_ROOT / "references.bib", book)  # the configuration names it
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/broken\n")
    (book / "intro.md").write_text("# Intro\n")
    header = (BOOK_ROOT / "chapters" / "01_sound_as_tokens.md").read_text().split("---")[1]
    (book / "chapters" / "broken.md").write_text(
        f"---{header}---\n\n# Broken\n\n```{{code-cell}} ipython3\n{cell}\n```\n")
    return book


@pytest.mark.parametrize("cell, fails", [("print('fine')", False), ("raise RuntimeError('this cell fails')", True)])
def test_a_failing_cell_fails_the_build(tmp_path, cell, fails):
    """The same minimal book builds with a good cell and fails with a raising one (raise_on_error works)."""
    book = minimal_book(tmp_path, cell)
    if fails:
        with pytest.raises(subprocess.CalledProcessError):
            build_book("tiny", output=tmp_path / "out", source=book, train_models=False)
    else:
        built = build_book("tiny", output=tmp_path / "out", source=book, train_models=False)
        assert (built / "chapters" / "broken.html").exists()


def test_a_change_to_wmlib_executes_every_chapter_again(tmp_path, monkeypatch):
    """An unchanged chapter keeps its cached outputs while wmlib is unchanged, and is executed again when wmlib's
    code changes (the chapter's text did not: Jupyter Book alone would keep the old outputs)."""
    from wmlib.book import build

    book = minimal_book(tmp_path, "import os\nprint('value', os.environ['WMLIB_TEST_VALUE'])")

    def built_value(value: str) -> str:
        monkeypatch.setenv("WMLIB_TEST_VALUE", value)
        page = build_book("tiny", output=tmp_path / "out", source=book, train_models=False) / "chapters"
        return BeautifulSoup((page / "broken.html").read_text(), "html.parser").select_one("div.cell_output").text

    assert "value first" in built_value("first")
    assert "value first" in built_value("second")  # cached: nothing changed that the build can see
    monkeypatch.setattr(build, "code_fingerprint", lambda: "edited")
    assert "value third" in built_value("third")  # wmlib changed: executed again


def click_in_chromium(page: Path, script_for_point: str | None, check: str, wait_s: float = 3.0,
                      ready: str = ".wm-latent-map[data-ready]", window: str = "1200,1000") -> dict:
    """Open ``page`` in headless Chromium (``window``: its size), evaluate ``script_for_point`` (JavaScript returning
    ``{x, y}`` in viewport pixels), click there with real mouse events (DevTools protocol), wait, and return the value
    of ``check`` (no click when ``script_for_point`` is None)."""
    import json
    import socket
    import time
    import urllib.request

    import websocket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Chromium's helper processes may still write to the profile for a moment after the browser is killed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile_dir:
        browser = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile_dir}",
             f"--remote-debugging-port={port}", f"--window-size={window}", page.as_uri()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2))
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            connection = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30)
            counter = iter(range(1, 10_000))

            def call(method, **params):
                message_id = next(counter)
                connection.send(json.dumps({"id": message_id, "method": method, "params": params}))
                while True:
                    reply = json.loads(connection.recv())
                    if reply.get("id") == message_id:
                        assert "error" not in reply, reply
                        return reply.get("result", {})

            def evaluate(expression):
                result = call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
                assert "exceptionDetails" not in result, result
                return result["result"].get("value")

            for _ in range(150):  # the page loaded and the map's script attached its handler
                if evaluate(f"!!document.querySelector('{ready}')"):
                    break
                time.sleep(0.2)
            if script_for_point is not None:
                point = evaluate(script_for_point)
                for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                    call("Input.dispatchMouseEvent", type=kind, x=point["x"], y=point["y"], button="left",
                         clickCount=1 if kind != "mouseMoved" else 0)
                    time.sleep(0.3)
            time.sleep(wait_s)
            value = evaluate(check)
            connection.close()
            return value
        finally:
            browser.kill()
            browser.wait()


#: JavaScript: scroll the first latent map into view; the viewport position of its first point.
FIRST_POINT = """(() => {
  const plot = document.querySelector('.wm-latent-map .plotly-graph-div');
  plot.scrollIntoView({block: 'center'});
  const layout = plot._fullLayout, trace = plot._fullData.find(t => t.visible === true);
  const box = plot.getBoundingClientRect();
  return {x: box.left + layout._size.l + layout.xaxis.d2p(trace.x[0]),
          y: box.top + layout._size.t + layout.yaxis.d2p(trace.y[0])};
})()"""

PLAYER_STATE = """(() => {
  const map = document.querySelector('.wm-latent-map'), player = map.querySelector('audio');
  return {state: map.dataset.state || '', clip: map.dataset.clip || '', src: (player.src || '').slice(0, 22),
          time: player.currentTime, paused: player.paused,
          status: map.querySelector('.wm-latent-status').textContent};
})()"""


def test_clicking_the_latent_map_plays_the_token(built_book):
    """A real mouse click (DevTools protocol) on a point of the latent map starts its player on that token's
    utterance; a click beside the points starts nothing."""
    page = built_book / "chapters" / "05_phones_sources_and_voices.html"
    assert CHROMIUM, "Debian's chromium is needed for the browser check"
    state = click_in_chromium(page, FIRST_POINT, PLAYER_STATE)
    assert state["src"].startswith("data:audio/ogg;base64"), state
    assert state["state"] in ("playing", "paused") and state["clip"] != "", state  # paused: it played to its end
    assert state["time"] > 0 and "Playing" in state["status"], state
    corner = FIRST_POINT.replace("layout.xaxis.d2p(trace.x[0])", "2").replace("layout.yaxis.d2p(trace.y[0])", "2")
    untouched = click_in_chromium(page, corner, PLAYER_STATE, wait_s=1.0)
    assert untouched["state"] == "" and untouched["src"] == "", untouched


#: JavaScript: scroll the feature browser's first top token into view; the viewport position of its centre.
FIRST_TOKEN = """(() => {
  const button = document.querySelector('.wm-feature-browser .wm-feature-token');
  button.scrollIntoView({block: 'center'});
  const box = button.getBoundingClientRect();
  return {x: box.left + box.width / 2, y: box.top + box.height / 2};
})()"""

BROWSER_STATE = """(() => {
  const browser = document.querySelector('.wm-feature-browser'), player = browser.querySelector('audio');
  const clips = JSON.parse(browser.querySelector('.wm-feature-clips').textContent);
  const first = browser.querySelector('.wm-feature-token');
  return {state: browser.dataset.state || '', clip: browser.dataset.clip || '', expected: first.dataset.clip,
          right_source: player.src === clips[+first.dataset.clip], time: player.currentTime,
          status: browser.querySelector('.wm-feature-status').textContent,
          bars: browser.querySelectorAll('.wm-feature-bar').length,
          trace: !!browser.querySelector('.wm-feature-trace polyline')};
})()"""


def test_clicking_a_feature_token_plays_it(built_book):
    """The feature browser of "Sparse features" draws its panel (label histogram, activation trace, top tokens), and
    a real click on a top token plays that token's clip; nothing plays before the click."""
    page = built_book / "chapters" / "14_sparse_features.html"
    assert CHROMIUM, "Debian's chromium is needed for the browser check"
    ready = ".wm-feature-browser[data-ready]"
    state = click_in_chromium(page, FIRST_TOKEN, BROWSER_STATE, ready=ready)
    assert state["clip"] == state["expected"] and state["right_source"], state
    assert state["state"] in ("playing", "paused", "ended") and state["time"] > 0, state
    assert "Playing" in state["status"] and state["bars"] > 0 and state["trace"], state
    nowhere = FIRST_TOKEN.replace("box.left + box.width / 2", "2").replace("box.top + box.height / 2", "2")
    untouched = click_in_chromium(page, nowhere, BROWSER_STATE, wait_s=1.0, ready=ready)
    assert untouched["state"] == "" and not untouched["right_source"], untouched


def test_every_chapter_offers_its_notebook_and_its_source_for_download(built_book):
    """The download menu of each executed chapter links its .ipynb (the executed notebook) and its .md source, and
    both files are in the build."""
    for chapter in CHAPTERS:
        if chapter.stem in PASTED:
            continue
        page = (built_book / "chapters" / f"{chapter.stem}.html").read_text()
        for suffix in (".ipynb", ".md"):
            assert f"_sources/chapters/{chapter.stem}{suffix}" in page, (chapter.stem, suffix)
            assert (built_book / "_sources" / "chapters" / f"{chapter.stem}{suffix}").is_file(), (chapter.stem, suffix)


#: JavaScript: the code cells whose lines are wider than their box (a horizontal scroll bar), with their first line.
WIDE_CODE = """(() => Array.from(document.querySelectorAll('div.cell_input pre'))
  .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '')))()"""


@pytest.mark.parametrize("chapter", [c.stem for c in CHAPTERS if c.stem not in PASTED])
def test_code_fits_the_page_at_1366_pixels(built_book, chapter):
    """No code cell scrolls sideways in the default theme on a 1366 x 768 laptop screen."""
    page = built_book / "chapters" / f"{chapter}.html"
    wide = click_in_chromium(page, None, WIDE_CODE, wait_s=0.5, ready="div.cell_input", window="1366,768")
    assert not wide, f"{chapter}: {len(wide)} code cells scroll sideways; their longest lines: {wide[:5]}"
