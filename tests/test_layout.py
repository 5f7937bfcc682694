"""The package's layout: every module imports on its own, stages import only earlier stages, no cycles, and the
names chapters use are importable from ``wmlib`` without loading torch."""
import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wmlib"
#: the data flow, in order: a module may import its own stage and earlier ones only
STAGES = ("data", "model", "analysis", "book")


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imports_of(module: str) -> set[str]:
    """The ``wmlib`` modules that ``module`` imports anywhere in its file (function-level imports included)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("wmlib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("wmlib"):
                known = set(module_names())
                targets = {f"{base}.{alias.name}" for alias in node.names} & known  # `from wmlib.data import audio`
                found |= targets or {base}
    return found - {module}


def stage(module: str) -> int | None:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None


def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def attempt(module):
        result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env,
                                timeout=300, cwd=ROOT)
        return module, result.returncode, result.stderr[-1500:]

    with ThreadPoolExecutor(2) as pool:
        failures = [(module, error) for module, code, error in pool.map(attempt, module_names()) if code]
    assert not failures, failures


def test_stages_import_only_earlier_stages_and_nothing_imports_in_a_cycle():
    graph = {module: imports_of(module) for module in module_names()}
    assert graph["wmlib.model.runs"] and "wmlib.model.train" in graph["wmlib.model.runs"]  # the parser sees imports
    for module, targets in graph.items():
        if stage(module) is None:
            continue  # wmlib, wmlib.cli, wmlib.__main__: the entry points, above every stage
        for target in targets:
            assert stage(target) is not None and stage(target) <= stage(module), f"{module} imports {target}"
    # no cycle, modules and packages alike (depth-first search for a back edge)
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_a_cycle_is_seen(tmp_path, monkeypatch):
    """The check can fail: the old ``runs`` <-> ``train`` pair (one import inside a function) is reported."""
    package = tmp_path / "wmlib" / "model"
    package.mkdir(parents=True)
    for path, text in ((tmp_path / "wmlib" / "__init__.py", ""), (package / "__init__.py", ""),
                       (package / "runs.py", "from .train import train\n"),
                       (package / "train.py", "def f():\n    from .runs import run_config\n")):
        path.write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "wmlib")
    with pytest.raises(AssertionError, match="import cycle"):
        test_stages_import_only_earlier_stages_and_nothing_imports_in_a_cycle()


def test_public_names_come_from_wmlib_without_loading_torch():
    code = "\n".join([
        "import sys, wmlib",
        "assert 'torch' not in sys.modules, 'import wmlib loaded torch'",
        "missing = [name for name in wmlib.__all__ if getattr(wmlib, name, None) is None]",
        "assert not missing, missing",
        "from wmlib import build_corpus, encode, load_model, load_tokens, train",
        "print('ok')"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
