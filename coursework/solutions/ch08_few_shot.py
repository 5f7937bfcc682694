"""Exercise 8.2 — reference solution: with how few labelled tokens per source does the model beat the log-mel?"""
from wmlib import load_tokens
from wmlib.analysis import applications, real_sound
from wmlib.model import runs

SET = "generated test split"


def answer(profile: str = "default") -> dict:
    tokens = applications.few_shot_tokens(load_tokens(profile, progress=False),
                                          *applications.FEW_SHOT_UTTERANCES[profile])
    features = real_sound.source_features(tokens, {"model": runs.run_dir(runs.DEFAULT_MODEL, profile)}, profile)
    table = applications.few_shot_curve({name: features[name] for name in ("model", "log-mel")}, tokens.labels)
    fewest = next((shots for shots in applications.SHOTS
                   if applications.few_shot_difference(table, "model", "log-mel", SET, shots).low > 0), None)
    at_eight = table.query("`test set` == @SET and shots == 8").set_index("representation")["balanced_accuracy"]
    return {"fewest_shots": fewest, "model_8": at_eight["model"], "log-mel_8": at_eight["log-mel"]}
