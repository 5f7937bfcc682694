"""Exercise 6.2 — reference solution: trained on generated sound, which representation's source probe transfers
to real recordings best?"""
from wmlib import load_tokens
from wmlib.analysis import real_sound
from wmlib.model import runs


def answer(profile: str = "default") -> dict:
    tokens = real_sound.source_probe_tokens(load_tokens(profile, progress=False),
                                            real_sound.SOURCE_PROBE_UTTERANCES[profile])
    model = runs.run_dir(runs.DEFAULT_MODEL, profile)
    features = real_sound.source_features(tokens, {"model": model,
                                                   "random init": model / "checkpoints" / "step-000000"}, profile)
    table = real_sound.source_transfer(features, tokens.labels)["balanced accuracy"]
    return {"model": table["model"], "random init": table["random init"], "log-mel": table["log-mel"],
            "best": table.idxmax()}
