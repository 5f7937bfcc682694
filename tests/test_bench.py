"""The benchmark scripts run and print every row (tiny sizes; no timing is asserted)."""
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, timeout: int = 300) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_train_bench_prints_every_model_and_both_references():
    # Without the torch.compile rows: compiling takes minutes, cold, even at tiny sizes; compiled training is
    # tested in test_train.py.
    out = run("train_bench.py", "--preset", "tiny", "--batch", "2", "--length", "8", "--steps", "1", "--rounds", "2",
              "--encode-batch", "2", "--peak-seconds", "0.05", "--no-compile")
    for row in ("rssm contrastive", "rssm contrastive, 1 head", "rssm reconstruction", "transformer contrastive",
                "masked autoencoder", "plain nn.TransformerEncoder + InfoNCE", "plain GRUCell loop"):
        assert row in out, out
    assert "MFU %" in out and "encode MFU %" in out and "vs plain loop" in out and "fp32 matmul peak" in out
    assert "memory allocator: " in out
    assert "compiled" not in out


def test_transformer_width_prints_every_shape_and_the_reference():
    out = run("transformer_width.py", "--preset", "tiny", "--shapes", "64x1", "128x2", "--batch", "2", "--length", "8",
              "--steps", "1", "--rounds", "2", "--encode-batch", "2", "--peak-seconds", "0.05")
    lines = out.splitlines()
    for row in ("64x1", "128x2", "reference: plain nn.TransformerEncoder + InfoNCE"):
        assert any(line.strip().startswith(row) for line in lines), out
    assert "MFU %" in out and "encode x real time" in out and "book training min" in out


def test_transformer_width_refuses_a_malformed_shape():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "transformer_width.py"), "--shapes", "100x2"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode != 0 and "multiple of 64" in result.stderr


def test_matmul_layouts_prints_both_layouts():
    out = run("matmul_layouts.py", "--rows", "4", "--calls", "2", "--in-features", "8", "--out-features", "16")
    assert "F.linear (x @ W.T view)" in out and "addmm with contiguous W^T" in out


def test_probe_bench_prints_every_probe_and_both_chapters(tiny_tokens):
    from wmlib.model.runs import train_book_models

    train_book_models("tiny", progress=False)  # the chapters' rows read the book's models
    out = run("probe_bench.py", "--profile", "tiny", "--tokens", "300", "--dims", "16", "--classes", "5", "--seeds",
              "1", timeout=900)
    for probe in ("linear", "mlp", "supervised"):
        assert out.count(f"\n{probe} ") == 2, out  # regression and classification
    for chapter in ("pitch and energy", "phones, sources and voices"):
        assert f"{chapter:<28}total" in out, out
    assert "both chapters:" in out and "tokens probed/s" in out


def test_data_curve_prints_the_curve_and_paired_verdicts(tiny_tokens, tmp_path):
    out = run("data_curve.py", "--profile", "tiny", "--recipes", "wide", "wide+regularised", "--steps", "12", "--keep",
              "6", "--finished", "6", "--max-windows", "6", "--no-progress", "--out", str(tmp_path), timeout=900)
    for row in ("wide @ 6", "wide @ 12", "wide+regularised @ 12", "wide (finished 6) @ 6", "copy last token"):
        assert row in out, out
    for column in ("real speech (held out), h=1", "real music (held out), h=2", "generated (test), h=1"):
        assert column in out, out
    assert "training loss" in out and "verdict" in out
    differences = pd.read_csv(tmp_path / "data_curve_differences.csv")
    assert set(differences["verdict"]) <= {"beats", "loses to", "not distinguishable from"}
    assert differences["difference"].between(differences["low"], differences["high"]).all()


def test_dream_temperature_prints_the_criterion_and_a_choice(tiny_tokens):
    from wmlib.model.runs import train_book_models

    train_book_models("tiny", progress=False)
    out = run("dream_temperature.py", "--profile", "tiny", "--windows", "4", "--temperatures", "0.1", "1.0")
    assert "dream speed" in out and "real speed" in out and "chosen: T = " in out, out


def test_sparse_dictionary_prints_every_setting(tiny_tokens):
    from wmlib.model.runs import train_book_models

    train_book_models("tiny", progress=False)
    out = run("sparse_dictionary.py", "--profile", "tiny", "--settings", "2x2x1x3000", "4x4x2x6000")
    for setting in ("2x2x1x3000", "4x4x2x6000"):
        assert setting in out, out
    assert "stable" in out and "matched share" in out and "the chapter's setting" in out, out
    malformed = subprocess.run([sys.executable, str(ROOT / "bench" / "sparse_dictionary.py"), "--settings", "4x16"],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert malformed.returncode != 0 and "expansion x top_k x epochs x tokens" in malformed.stderr
