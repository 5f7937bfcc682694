"""Exercise 11.1 — reference solution: does the model's pitch RSA depend on the distance that builds its RDM?"""
import numpy as np
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import calc_rdm

from wmlib.analysis import rsa
from wmlib.analysis.encoders import world_model_encoder
from wmlib.model import runs


def answer(profile: str = "default") -> dict:
    stimuli = rsa.book_stimuli(profile)
    encoder = world_model_encoder(runs.DEFAULT_MODEL, profile)
    embedding = rsa.embed_stimuli(encoder, stimuli, profile)[encoder.layers[0]]
    pitched = stimuli.labels["semitone"].notna().to_numpy()  # the pitch RDM is defined between pitched sounds
    pitch = rsa.label_rdms(stimuli.labels)["pitch"][np.ix_(pitched, pitched)]
    result = {}
    for method in ("correlation", "euclidean"):
        model_rdm = calc_rdm(Dataset(embedding[pitched].astype(float)), method=method).get_matrices()[0]
        result[method] = rsa.compare_rsatoolbox(model_rdm, pitch, "spearman")
    return result
