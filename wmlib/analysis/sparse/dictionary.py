"""A sparse dictionary of a representation: a TopK sparse autoencoder (Gao et al. 2024) trained with the
``overcomplete`` library, cached on disk, loaded without unpickling.

The autoencoder reads a representation ``x`` (one row per token), centred by its training mean and divided by one
scalar so that the mean squared norm of a row is 1 (a feature's activation is then comparable across
representations); it codes it as ``z = TopK(ReLU(W_enc x + b))`` — exactly ``top_k`` active features per token, so
L0 is the same for every representation given the same settings — and reconstructs ``x̂ = z D``, whose atoms (rows
of ``D``) have unit norm.  Training: Adam, cosine learning rate, MSE plus the AuxK term that revives dead features.

Why ``overcomplete`` (0.3.0): it is a small, maintained library of exactly these autoencoders (TopK, BatchTopK,
JumpReLU, archetypal) over any activation matrix, with its AuxK loss and training loop; ``sae-lens`` and
``dictionary-learning`` are built around language-model activation stores (transformer-lens, nnsight, datasets)
that this book does not need.  Its package ``__init__`` also imports its vision models (torchvision, whose wheels
do not load with torch 2.13 here) and image plots (OpenCV); :func:`overcomplete_sae` imports only its ``sae``
sub-package, in one place, without them.

Used by the chapter "Sparse features".
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wmlib.data.files import atomic_write

DICTIONARY_VERSION = "sparse-dictionary-1"


def overcomplete_sae():
    """The ``overcomplete.sae`` module, imported without the package's vision extras.

    ``overcomplete/__init__.py`` imports its image models and plots (torchvision, OpenCV) before anything else; the
    sparse autoencoders need neither.  When that import fails, the package is registered as a bare namespace (its
    own folder, no ``__init__`` run) so that ``overcomplete.sae`` imports on its own.
    """
    if "overcomplete.sae" in sys.modules:
        return sys.modules["overcomplete.sae"]
    spec = importlib.util.find_spec("overcomplete")
    if spec is None:
        raise ImportError("the sparse autoencoders need the package overcomplete: "
                          "pip install --no-deps overcomplete==0.3.0 (make setup installs it)")
    try:
        return importlib.import_module("overcomplete.sae")
    except ImportError:  # torchvision / cv2 missing or broken: skip the package's __init__
        for name in [name for name in sys.modules if name == "overcomplete" or name.startswith("overcomplete.")]:
            del sys.modules[name]
        package = types.ModuleType("overcomplete")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["overcomplete"] = package
        return importlib.import_module("overcomplete.sae")


@dataclass(frozen=True)
class DictionaryConfig:
    """How a sparse dictionary is trained.

    Attributes:
        expansion: features per input dimension of the *model's* state (the dictionary has ``features`` atoms;
            every representation of one study gets the same number, whatever its width).
        features: the number of atoms (set by the study from ``expansion``; 0 here means ``expansion * width``).
        top_k: active features per token (the L0 of every token).
        epochs, batch_size, lr: Adam on the MSE + AuxK loss, cosine decay to 10% of ``lr``.
        aux_penalty: weight of the AuxK term.
        max_tokens: training rows at most (a seeded subsample beyond it).
    """

    expansion: int = 8
    features: int = 0
    top_k: int = 16
    epochs: int = 6
    batch_size: int = 512
    lr: float = 1e-3
    aux_penalty: float = 1 / 32
    max_tokens: int = 40_000

    def atoms(self, width: int) -> int:
        return self.features or self.expansion * width


@dataclass
class SparseDictionary:
    """A trained TopK sparse autoencoder and the scaling of its input.

    Attributes:
        encoder_weight: ``(F, D)``; encoder_bias ``(F,)``.
        atoms: ``(F, D)`` unit-norm decoder rows (the features' directions, in the scaled input space).
        decoder_bias: ``(D,)`` (overcomplete's dictionary layer has none: zeros, kept for the arithmetic).
        mean: ``(D,)`` the training mean; scale: the scalar the centred input was divided by.
        top_k: active features per token.
        info: config, seed, training time, the input's hash.
    """

    encoder_weight: np.ndarray
    encoder_bias: np.ndarray
    atoms: np.ndarray
    mean: np.ndarray
    scale: float
    top_k: int
    info: dict = field(default_factory=dict)

    @property
    def features(self) -> int:
        return len(self.atoms)

    def scaled(self, x: np.ndarray) -> np.ndarray:
        """Rows of the representation -> the space the dictionary lives in (centred, scaled)."""
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2 and x.shape[1] == self.atoms.shape[1], (
            f"this dictionary reads rows of width {self.atoms.shape[1]}, got an array of shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("the representation holds NaN or infinite values: a sparse dictionary cannot code them")
        return (x - self.mean) / self.scale

    def encode(self, x: np.ndarray, batch: int = 8192) -> np.ndarray:
        """``(N, D)`` -> codes ``(N, F)``: ``top_k`` non-negative activations per row, the rest 0."""
        scaled = self.scaled(x)
        out = np.zeros((len(scaled), self.features), dtype=np.float32)
        for start in range(0, len(scaled), batch):
            pre = np.maximum(scaled[start:start + batch] @ self.encoder_weight.T + self.encoder_bias, 0)  # (n, F)
            top = np.argpartition(-pre, self.top_k - 1, axis=1)[:, : self.top_k]  # (n, k)
            rows = np.arange(len(pre))[:, None]
            out[start + rows, top] = pre[rows, top]
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes ``(N, F)`` -> rows of the representation ``(N, D)`` (unscaled, mean added back)."""
        return (np.asarray(codes, dtype=np.float32) @ self.atoms) * self.scale + self.mean

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))

    def direction(self, feature: int) -> np.ndarray:
        """Feature ``feature``'s atom in the representation's own units (``(D,)``, norm = ``scale``)."""
        return self.atoms[feature] * self.scale

    # -- files (safetensors + JSON header: nothing is unpickled) --------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        from safetensors.numpy import save

        tensors = {"encoder_weight": self.encoder_weight, "encoder_bias": self.encoder_bias, "atoms": self.atoms,
                   "mean": self.mean.astype(np.float32)}
        metadata = {"scale": repr(float(self.scale)), "top_k": str(self.top_k), "info": json.dumps(self.info),
                    "version": DICTIONARY_VERSION}
        path = Path(path)
        with atomic_write(path) as handle:
            handle.write(save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SparseDictionary:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except Exception as error:  # safetensors' own error types vary by version
            raise ValueError(f"{path} is not a readable sparse dictionary ({error}); delete it to train it "
                             "again") from None
        if metadata.get("version") != DICTIONARY_VERSION:
            raise ValueError(f"{path} is not a sparse dictionary of this version ({DICTIONARY_VERSION}); "
                             "delete it to train it again")
        return cls(tensors["encoder_weight"], tensors["encoder_bias"], tensors["atoms"], tensors["mean"],
                   float(metadata["scale"]), int(metadata["top_k"]), json.loads(metadata["info"]))


def array_hash(x: np.ndarray) -> str:
    """A short hash of an array's shape and values."""
    hasher = hashlib.sha256(str(x.shape).encode())
    hasher.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    return hasher.hexdigest()[:16]


def train_dictionary(x: np.ndarray, config: DictionaryConfig = DictionaryConfig(), features: int | None = None,
                     seed: int = 0, progress: bool = False) -> SparseDictionary:
    """Train a TopK sparse autoencoder on the rows of ``x`` (``(N, D)``, a representation of training tokens).

    Args:
        x: the training rows; NaN rows are an error, not dropped.
        features: the dictionary size (default ``config.atoms(D)``).
        seed: the autoencoder's initialisation, the subsample and the batch order; the same seed, the same weights.
    """
    import torch
    from tqdm import tqdm

    sae = overcomplete_sae()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"a sparse dictionary trains on a (tokens, width) array of at least 2 rows, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the representation holds NaN or infinite values: a sparse dictionary cannot code them")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    if len(x) > config.max_tokens:
        x = x[np.sort(rng.choice(len(x), config.max_tokens, replace=False))]
    mean = x.mean(axis=0)
    scale = float(np.sqrt(((x - mean) ** 2).sum(axis=1).mean())) or 1.0
    data = torch.from_numpy((x - mean) / scale)  # (N, D), mean squared row norm 1
    n_features = features or config.atoms(x.shape[1])
    assert config.top_k < n_features, f"top_k={config.top_k} must be below the dictionary size {n_features}"
    torch.manual_seed(seed)
    # decoder rows at random on the unit sphere, the encoder their transpose (Gao et al.'s initialisation: every
    # feature starts by reading the direction it writes, which keeps far fewer of them dead)
    start = torch.nn.functional.normalize(torch.randn(n_features, x.shape[1]), dim=1)
    model = sae.TopKSAE(x.shape[1], nb_concepts=n_features, top_k=config.top_k,
                        dictionary_params={"initializer": start.numpy()})
    if hasattr(model.encoder, "final_block"):
        with torch.no_grad():
            model.encoder.final_block[0].weight.copy_(start)
            model.encoder.final_block[0].bias.zero_()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = config.epochs * -(-len(data) // config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(step, steps) / steps)))

    def loss(x, x_hat, pre_codes, codes, dictionary):
        return sae.losses.top_k_auxiliary_loss(x, x_hat, pre_codes, codes, dictionary, penalty=config.aux_penalty)

    order = torch.Generator().manual_seed(seed)
    with tqdm(total=steps, desc="sparse dictionary", unit="step", disable=not progress) as bar:
        for _ in range(config.epochs):
            model.train()
            for batch in torch.randperm(len(data), generator=order).split(config.batch_size):
                x_batch = data[batch]
                optimizer.zero_grad()
                pre_codes, codes, x_hat = model(x_batch)
                value = loss(x_batch, x_hat, pre_codes, codes, model.get_dictionary())
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                bar.update()
    model.eval()
    with torch.no_grad():
        weight, bias = _encoder_affine(model, x.shape[1])
        atoms = model.get_dictionary().detach().numpy()  # (F, D), unit rows
    info = {"config": asdict(config), "features": n_features, "seed": seed, "rows": len(x),
            "seconds": round(time.perf_counter() - started, 2), "library": "overcomplete 0.3.0 TopKSAE"}
    return SparseDictionary(weight, bias, atoms.astype(np.float32), mean.astype(np.float32), scale, config.top_k,
                            info)


def _encoder_affine(model, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The linear encoder of overcomplete's default ``linear`` encoder as ``(W, b)``, read by probing it with the
    identity (so this does not depend on the module's attribute names), and checked against the module."""
    import torch

    with torch.no_grad():
        bias_row, _ = model.encoder(torch.zeros(1, width))  # pre-codes of 0: the bias
        basis, _ = model.encoder(torch.eye(width))  # (D, F): bias + W e_i
        weight = (basis - bias_row).T.contiguous()  # (F, D)
        probe = torch.randn(8, width, generator=torch.Generator().manual_seed(0))
        expected, _ = model.encoder(probe)
        assert torch.allclose(probe @ weight.T + bias_row, expected, atol=1e-4), (
            "the sparse autoencoder's encoder is not affine: this code reads only overcomplete's linear encoder")
    return weight.numpy().astype(np.float32), bias_row[0].numpy().astype(np.float32)


def cached_dictionary(x: np.ndarray, cache_dir: str | os.PathLike | None, config: DictionaryConfig = DictionaryConfig(),
                      features: int | None = None, seed: int = 0, progress: bool = False) -> SparseDictionary:
    """:func:`train_dictionary`, cached under ``cache_dir`` by the input's values, the config and the seed
    (``cache_dir=None``: no cache)."""
    if cache_dir is None:
        return train_dictionary(x, config, features, seed, progress)
    key = json.dumps([array_hash(x), asdict(config), features, seed, DICTIONARY_VERSION])
    path = Path(cache_dir) / f"sae-{hashlib.sha256(key.encode()).hexdigest()[:20]}.safetensors"
    if path.is_file():
        try:
            return SparseDictionary.load(path)
        except ValueError:  # another version of the code wrote it: train again (written atomically below)
            pass
    dictionary = train_dictionary(x, config, features, seed, progress)
    dictionary.save(path)
    return dictionary
