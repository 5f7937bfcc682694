"""Tests of wmlib.model.train: reproducible windows, exact resume, DDP on the CPU, checkpoint safety, the run directory.

Everything trains the ``tiny`` model preset on a small synthetic TokenSet built here (no corpus needed).
"""
import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from wmlib.cli import add_train_arguments, config_from_args
from wmlib.data.features import FeatureConfig, TokenSet
from wmlib.model.checkpoints import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    list_checkpoints,
    load_model,
    load_weights,
    read_metrics,
    save_weights,
)
from wmlib.model.models import ModelConfig, build_model
from wmlib.model.train import TokenWindows, TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]


def make_tokens(seed: int = 0) -> TokenSet:
    """Six 40-token "melodies" (a spectral peak wandering over a noise floor) and a 5-token utterance (too short
    for the windows) in split train; one 30-token utterance in split valid."""
    rng = np.random.default_rng(seed)
    config = FeatureConfig()
    bins = np.arange(config.n_mels)[:, None]
    mels, rows = [], []
    lengths = {f"utt{i}": 40 for i in range(6)} | {"short": 5, "valid0": 30}
    for utt_id, length in lengths.items():
        centre = np.cumsum(rng.integers(-2, 3, size=length)) % config.n_mels + 0.0
        for t in range(length):
            token = -80 + 60 * np.exp(-((bins - centre[t]) ** 2) / 8.0) + rng.normal(0, 2, (config.n_mels, 4))
            mels.append(token.astype(np.float32))
            rows.append({"utt_id": utt_id, "token": t, "split": "valid" if utt_id.startswith("valid") else "train"})
    return TokenSet(np.stack(mels), pd.DataFrame(rows), config)


def tiny_config(**changes) -> TrainConfig:
    base = TrainConfig(profile="tiny", name="test", preset="tiny", seq_len=8, batch_size=4, steps=8, lr=1e-3,
                       warmup=2, checkpoint_every=4, keep_checkpoints_at=(0, 2, 4), log_every=2)
    return replace(base, **changes)


def ddp_config(objective: str = "reconstruction") -> TrainConfig:
    """A deterministic model (transformer, no sampling), so one process and two compute the same global-batch
    gradient: with a per-window loss (reconstruction) trivially, with InfoNCE because the negatives are gathered
    from every process."""
    return tiny_config(name="ddp", steps=6, model_overrides={"dynamics": "transformer", "objective": objective})


def weights(run_dir) -> dict:
    model, _ = load_model(run_dir)
    return model.state_dict()


def assert_same_weights(a: dict, b: dict, atol: float = 0.0):
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0.0:
            assert torch.equal(a[key], b[key]), f"{key} differs by {(a[key] - b[key]).abs().max():.3g}"
        else:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=lambda m: f"{key}: {m}")  # noqa: B023


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokens():
    return make_tokens()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tokens):
    """One uninterrupted run of :func:`tiny_config` (RSSM with sampling, contrastive)."""
    return train(tiny_config(), tmp_path_factory.mktemp("runs") / "full", progress=False, tokens=tokens)


# -- windows --------------------------------------------------------------------------------------------------------


def test_windows_stay_inside_utterances_and_skip_short_ones(tokens):
    windows = TokenWindows(tokens, seq_len=8, split="train")
    assert windows.skipped_utterances == ["short"]
    assert len(windows) == 6 * (40 - 8 + 1)
    batch = windows.windows(torch.arange(len(windows)))  # (W, T, M, F)
    assert batch.shape == (len(windows), 8, 64, 4)
    # each window is 8 consecutive tokens of one utterance: compare with the source rows
    labels = tokens.labels
    for index in (0, 32, 33, len(windows) - 1):
        start = int(windows.starts[index])
        utt, first = windows.utt_id[start], windows.token[start]
        assert utt.startswith("utt") and first <= 40 - 8
        rows = np.flatnonzero((labels.utt_id == utt).to_numpy())[first: first + 8]
        assert torch.equal(batch[index], torch.from_numpy(tokens.mel[rows]))
    with pytest.raises(ValueError, match="no window of 64"):
        TokenWindows(tokens, seq_len=64, split="train")


def test_batches_are_reproducible_and_ranks_split_the_global_batch(tokens):
    windows = TokenWindows(tokens, seq_len=8)
    first = windows.batch_indices(step=3, batch_size=8, seed=1)
    assert torch.equal(first, windows.batch_indices(step=3, batch_size=8, seed=1))
    assert not torch.equal(first, windows.batch_indices(step=4, batch_size=8, seed=1))
    halves = [windows.batch_indices(3, 8, 1, rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat(halves), first)
    with pytest.raises(AssertionError, match="divisible"):
        windows.batch_indices(3, 7, 1, rank=0, world_size=2)


# -- exact resume ---------------------------------------------------------------------------------------------------


def train_interrupted_at_step_6(config, run_dir, tokens, monkeypatch):
    """Ctrl-C while step 6's batch is drawn (after the step-4 checkpoint)."""
    original_batch = TokenWindows.batch

    def interrupt_at_step_6(self, step, *args, **kwargs):
        if step == 6:
            raise KeyboardInterrupt
        return original_batch(self, step, *args, **kwargs)

    monkeypatch.setattr(TokenWindows, "batch", interrupt_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(config, run_dir, progress=False, tokens=tokens)
    monkeypatch.setattr(TokenWindows, "batch", original_batch)


def test_interrupted_run_resumes_to_the_same_weights(finished_run, tokens, tmp_path, monkeypatch):
    """Ctrl-C at step 6 (after the step-4 checkpoint), then train again: the same final weights, bit for bit."""
    run_dir = tmp_path / "interrupted"
    train_interrupted_at_step_6(tiny_config(), run_dir, tokens, monkeypatch)
    # the interruption left the step-4 checkpoint complete and no temporary files
    assert json.loads((run_dir / "config.json").read_text())["train"]["steps"] == 8
    assert [step for step, _ in list_checkpoints(run_dir)] == [0, 2, 4]
    assert not list(run_dir.rglob("*.part"))
    train(tiny_config(), run_dir, progress=False, tokens=tokens)
    assert_same_weights(weights(finished_run), weights(run_dir))
    # the metrics of steps 5-6 logged before the interruption are not duplicated
    assert list(read_metrics(run_dir)["step"]) == [2, 4, 6, 8]
    assert read_metrics(run_dir)["loss"].tolist() == read_metrics(finished_run)["loss"].tolist()


def test_shorter_run_extended_matches_uninterrupted_constant_schedule(tokens, tmp_path):
    """With a constant schedule, training 4 steps and then asking for 8 equals training 8 at once."""
    config = tiny_config(schedule="constant")
    full = train(config, tmp_path / "full", progress=False, tokens=tokens)
    part = train(replace(config, steps=4), tmp_path / "part", progress=False, tokens=tokens)
    assert json.loads((part / "config.json").read_text())["train"]["steps"] == 4
    train(config, part, progress=False, tokens=tokens)
    assert_same_weights(weights(full), weights(part))
    # a finished run is not trained again
    before = (part / "model.safetensors").stat().st_mtime_ns
    train(config, part, progress=False, tokens=tokens)
    assert (part / "model.safetensors").stat().st_mtime_ns == before


def test_augmented_run_is_reproducible_and_resumes_bit_for_bit(tokens, tmp_path, monkeypatch):
    """On-the-fly augmentation draws from (seed, step, rank): two runs, and a run interrupted and resumed, end with
    the same weights; the augmentation changes the training (the weights differ from an unaugmented run)."""
    config = tiny_config(augment={}, model_overrides={"dynamics": "transformer", "dropout": 0.1})
    assert config.augment["snr_db"] == [0.0, 25.0]  # every setting written out in config.json
    first = train(config, tmp_path / "first", progress=False, tokens=tokens)
    second = train(config, tmp_path / "second", progress=False, tokens=tokens)
    assert_same_weights(weights(first), weights(second))
    train_interrupted_at_step_6(config, tmp_path / "resumed", tokens, monkeypatch)
    resumed = train(config, tmp_path / "resumed", progress=False, tokens=tokens)
    assert_same_weights(weights(first), weights(resumed))
    plain = train(replace(config, augment=None), tmp_path / "plain", progress=False, tokens=tokens)
    assert not torch.equal(next(iter(weights(first).values())), next(iter(weights(plain).values())))


def test_augmentation_of_a_global_batch_does_not_depend_on_the_number_of_processes(tokens):
    from wmlib.data.mel_augment import MelAugment
    from wmlib.model.train import _augment_batch

    windows, augment = TokenWindows(tokens, seq_len=8), MelAugment().train()
    whole = _augment_batch(augment, windows, windows.batch(3, 4, seed=1), seed=1, step=3)
    halves = [_augment_batch(augment, windows, windows.batch(3, 4, 1, rank=r, world_size=2), 1, 3, r, 2)
              for r in range(2)]
    assert torch.equal(torch.cat(halves), whole)
    assert not torch.equal(whole, windows.batch(3, 4, seed=1))


def test_stop_at_keeps_the_schedule_and_continues_to_the_same_weights(finished_run, tokens, tmp_path):
    """``stop_at``: a run of the full schedule stopped early (the book's second seed) has the full run's step-4
    weights, and continued without ``stop_at`` it ends with the full run's weights, bit for bit."""
    stopped = train(tiny_config(stop_at=4), tmp_path / "stopped", progress=False, tokens=tokens)
    assert [step for step, _ in list_checkpoints(stopped)] == [0, 2, 4]
    assert read_metrics(stopped)["step"].max() == 4
    assert_same_weights(weights(finished_run / "checkpoints" / "step-000004"), weights(stopped))
    train(tiny_config(), stopped, progress=False, tokens=tokens)
    assert_same_weights(weights(finished_run), weights(stopped))
    with pytest.raises(AssertionError, match="stop_at"):
        tiny_config(stop_at=9)


RETRAIN_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_train import make_tokens, tiny_config
from wmlib.model.train import train
train(tiny_config(), sys.argv[1], progress=False, tokens=make_tokens())
"""


def test_another_process_trains_the_same_weights(finished_run, tmp_path):
    """The same configuration and seed in a fresh process, with another hash seed for Python's sets and dicts,
    gives the RSSM (sampling included) the same weights bit for bit: reproducible beyond one process."""
    script = tmp_path / "retrain.py"
    script.write_text(RETRAIN_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "again")], env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_same_weights(weights(finished_run), weights(tmp_path / "again"))


# -- DDP ------------------------------------------------------------------------------------------------------------

DDP_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_train import ddp_config, make_tokens
from wmlib.model.train import train
train(ddp_config(sys.argv[2]), sys.argv[1], progress=False, tokens=make_tokens())
"""


@pytest.mark.parametrize("objective", ["reconstruction", "contrastive"])
def test_two_gloo_processes_match_one_process(objective, tokens, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(tmp_path / "two"), objective], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    one = train(ddp_config(objective), tmp_path / "one", progress=False, tokens=tokens)
    one_weights, two_weights = weights(one), weights(tmp_path / "two")
    # The attention key bias has an exactly zero gradient (it adds q·b to every key's score alike, and softmax
    # ignores that), so it only moves by rounding noise, which Adam's normalisation amplifies: take it apart.
    for key in [k for k in one_weights if k.endswith(".qkv.bias")]:
        d = one_weights[key].shape[0] // 3
        torch.testing.assert_close(one_weights[key][d: 2 * d], two_weights[key][d: 2 * d], atol=1e-4, rtol=0)
        for weights_ in (one_weights, two_weights):
            weights_[key] = torch.cat([weights_[key][:d], weights_[key][2 * d:]])
    assert_same_weights(one_weights, two_weights, atol=1e-5)
    # only rank 0 wrote: one metrics line per log step, with the loss averaged over both ranks
    two_metrics, one_metrics = read_metrics(tmp_path / "two"), read_metrics(one)
    assert list(two_metrics["step"]) == [2, 4, 6]
    np.testing.assert_allclose(two_metrics["loss"], one_metrics["loss"], rtol=1e-4)


# -- checkpoint safety ----------------------------------------------------------------------------------------------


def test_tampered_files_are_refused(finished_run, tmp_path):
    import shutil

    for name, offset, message in (("header", 8, "not a readable safetensors file"),
                                  ("tensors", -64, "content hash")):
        run_dir = tmp_path / name
        shutil.copytree(finished_run, run_dir)
        path = run_dir / "model.safetensors"
        data = bytearray(path.read_bytes())
        data[offset: offset + 8] = b"\x7f" * 8  # garbage in the JSON header / in the tensors' bytes
        path.write_bytes(bytes(data))
        with pytest.raises(CheckpointCorruptError, match=message):
            load_model(run_dir)


def test_weights_of_another_config_are_refused(finished_run, tmp_path):
    import shutil

    run_dir = tmp_path / "swapped"
    shutil.copytree(finished_run, run_dir)
    other_config = ModelConfig.preset("tiny", embed_dim=48)
    other = build_model(other_config)
    save_weights(run_dir / "model.safetensors", other, other_config, step=0)
    with pytest.raises(CheckpointMismatchError, match="embed_dim: 48 \\(weights\\) vs 32 \\(config.json\\)"):
        load_model(run_dir)
    # loading into a model directly names the keys whose shapes differ
    model, _ = load_model(finished_run)
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatches .*encoder\.net\.0\.weight: file \(48, 256\)"):
        load_weights(model, run_dir / "model.safetensors")
    # a file with a missing key (and no config in its header)
    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in model.state_dict().items() if k != "encoder.net.0.bias"}
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \(1\): encoder\.net\.0\.bias"):
        load_weights(model, tmp_path / "partial.safetensors")


def test_resuming_with_another_config_is_refused(finished_run, tokens):
    with pytest.raises(CheckpointMismatchError) as error:
        train(tiny_config(lr=3e-3, model_overrides={"deter_dim": 32}), finished_run, progress=False, tokens=tokens)
    message = str(error.value)
    assert "train.lr: 0.001 (saved) vs 0.003 (requested)" in message
    assert "model.deter_dim: 64 (saved) vs 32 (requested)" in message
    assert "new name" in message and "delete" in message
    with pytest.raises(CheckpointMismatchError, match="data.fingerprint"):
        train(tiny_config(), finished_run, progress=False, tokens=make_tokens(seed=1))


def test_a_run_being_trained_elsewhere_is_refused(tokens, tmp_path):
    import fcntl


    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / "train.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(CheckpointError, match="being trained by another process"):
            train(tiny_config(), tmp_path, progress=False, tokens=tokens)


# -- the run directory ----------------------------------------------------------------------------------------------


def test_run_directory_layout(finished_run, tokens):
    metrics = read_metrics(finished_run)
    assert list(metrics["step"]) == [2, 4, 6, 8]
    assert np.isfinite(metrics["loss"]).all()
    for column in ("lr", "tokens_per_second", "elapsed_seconds", "grad_norm", "kl", "contrastive", "readout"):
        assert column in metrics, column
    assert [step for step, _ in list_checkpoints(finished_run)] == [0, 2, 4, 8]  # requested + final
    assert not list(finished_run.rglob("*.part")) and not list(finished_run.rglob(".*"))
    assert not (finished_run / "train.lock").exists()
    saved = json.loads((finished_run / "config.json").read_text())
    assert saved["model"] == ModelConfig.preset("tiny").to_dict() and saved["train"]["seq_len"] == 8
    # step 0 is the initialisation: the same weights as a fresh model built with the seed
    torch.manual_seed(0)
    fresh = build_model(ModelConfig.preset("tiny"))
    initial, config = load_model(finished_run / "checkpoints" / "step-000000")
    assert not initial.training and config == ModelConfig.preset("tiny")
    assert_same_weights(fresh.state_dict(), initial.state_dict())
    # latest weights = the final permanent checkpoint
    assert_same_weights(weights(finished_run), weights(finished_run / "checkpoints" / "step-000008"))


def test_command_line_arguments():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--profile", "tiny", "--dynamics", "transformer", "--objective", "both", "--steps", "30",
                              "--seed", "3"])
    config = config_from_args(args)
    assert (config.profile, config.name, config.steps, config.seed) == ("tiny", "transformer-both", 30, 3)
    assert config.model_config().dynamics == "transformer" and config.model_config().objective == "both"
    # a run of your own starts from the book's default model and the profile's training settings
    from wmlib.model.runs import DEFAULT_MODEL, MODELS, TRAINING, run_config

    custom = config_from_args(parser.parse_args(["--profile", "tiny", "--model", "mine", "--objective", "both"]))
    book = run_config(DEFAULT_MODEL, "tiny")
    assert custom.name == "mine" and custom.model_overrides == {**MODELS[DEFAULT_MODEL], "objective": "both"}
    assert custom.augment == book.augment  # the profile's regularisation (none for tiny), unless a run says otherwise
    assert (custom.preset, custom.steps, custom.lr, custom.warmup) == (book.preset, book.steps, book.lr, book.warmup)
    assert custom.steps == TRAINING["tiny"]["steps"]
    # one model option alone keeps the default model's other: --objective reconstruction is a transformer
    assert config_from_args(parser.parse_args(["--profile", "tiny", "--objective", "reconstruction"])) == run_config(
        "transformer-reconstruction", "tiny")
    # the levers against memorising: augmentation, dropout, weight decay
    regularised = config_from_args(parser.parse_args(["--profile", "tiny", "--model", "mine", "--augment",
                                                      "--dropout", "0.1", "--weight-decay", "0.05"]))
    assert regularised.augment is not None and regularised.weight_decay == 0.05
    assert regularised.model_config().dropout == 0.1


def test_named_models_take_the_books_settings():
    from wmlib.model.runs import DEFAULT_MODEL, run_config

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    named = config_from_args(parser.parse_args(["--profile", "tiny", "--model", "rssm-contrastive", "--steps", "7"]))
    assert named == run_config("rssm-contrastive", "tiny", steps=7) and named.preset == "tiny"
    assert config_from_args(parser.parse_args(["--profile", "tiny"])) == run_config(DEFAULT_MODEL, "tiny")
    matching = config_from_args(parser.parse_args(["--profile", "tiny", "--dynamics", "rssm", "--objective",
                                                   "reconstruction"]))
    assert matching == run_config("rssm-reconstruction", "tiny")
    with pytest.raises(ValueError, match="named model"):
        config_from_args(parser.parse_args(["--model", "rssm-contrastive", "--dynamics", "transformer"]))
    with pytest.raises(AssertionError, match="unknown model"):
        run_config("no-such-model", "tiny")


@pytest.mark.parametrize("overrides", [{"dynamics": "transformer", "objective": "both"},
                                       {"dynamics": "rssm", "objective": "reconstruction"},
                                       {"architecture": "masked_autoencoder"}])
def test_every_model_kind_trains_and_loads(overrides, tokens, tmp_path):
    config = tiny_config(steps=3, model_overrides=overrides, keep_checkpoints_at=(0,))
    run_dir = train(config, tmp_path / "run", progress=False, tokens=tokens)
    model, model_config = load_model(run_dir)
    assert model_config == ModelConfig.preset("tiny", **overrides)
    assert np.isfinite(read_metrics(run_dir)["loss"]).all()
    assert [step for step, _ in list_checkpoints(run_dir)] == [0, 3]


@pytest.mark.parametrize("dynamics", ["transformer", "rssm"])
def test_compiled_training_matches_eager(dynamics, tokens, tmp_path):
    """``compile=True`` works on the CPU too, and trains the same weights as eager mode (the RSSM's sampling
    included) up to the rounding of fused kernels."""
    config = tiny_config(steps=3, keep_checkpoints_at=(0,), model_overrides={"dynamics": dynamics})
    eager = train(config, tmp_path / "eager", progress=False, tokens=tokens)
    compiled = train(replace(config, compile=True), tmp_path / "compiled", progress=False, tokens=tokens)
    assert json.loads((compiled / "config.json").read_text())["train"]["compile"] is True
    assert_same_weights(weights(eager), weights(compiled), atol=1e-4)


def test_importing_the_models_defers_torch_compile_until_asked():
    """``import wmlib.model.models`` does not load ``torch._dynamo`` (about 2 s); ``prepare_for_compile`` then keeps the
    RSSM's loop out of compilation (wrapped once, however often it is called) and sets eager's random numbers."""
    code = "\n".join([
        "import sys",
        "import wmlib.model.models as models",
        "assert 'torch._dynamo' not in sys.modules, 'importing wmlib.model.models loaded torch._dynamo'",
        "models.prepare_for_compile(); models.prepare_for_compile()",
        "loop = models.RSSM._run_posterior",
        "assert loop._torchdynamo_disable and not hasattr(loop._torchdynamo_orig_callable, '_torchdynamo_disable')",
        "from torch._inductor import config",
        "assert config.fallback_random",
        "print('ok')"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
