"""Exercise 11.2 — reference solution: linear CKA of the model with the log-mel it reads, against its random init."""
import numpy as np

from wmlib.analysis import rsa
from wmlib.analysis.encoders import load_encoder, world_model_encoder
from wmlib.model import runs


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def answer(profile: str = "default") -> dict:
    stimuli = rsa.book_stimuli(profile)
    encoders = {"model": world_model_encoder(runs.DEFAULT_MODEL, profile),
                "random init": world_model_encoder(runs.DEFAULT_MODEL, profile, step=0),
                "log-mel": load_encoder("log-mel", profile)}
    features = {name: rsa.embed_stimuli(encoder, stimuli, profile)[encoder.layers[0]].astype(np.float64)
                for name, encoder in encoders.items()}
    return {"model": linear_cka(features["model"], features["log-mel"]),
            "random init": linear_cka(features["random init"], features["log-mel"])}
