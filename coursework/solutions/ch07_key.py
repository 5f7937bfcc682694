"""Exercise 7.1 — reference solution: do the dreams keep the key better than a random walk from the last note?"""
from wmlib.analysis import coherence
from wmlib.analysis.dreams import DEFAULT_TEMPERATURE


def answer(profile: str = "default") -> dict:
    study, _ = coherence.DreamStudy.for_book(profile=profile)
    melody = study.melody_table().set_index("continuation")
    dream = f"dream (T={DEFAULT_TEMPERATURE:g})"
    difference = coherence.melody_difference(melody.reset_index(), dream, "random walk", "in_key")
    return {"dream": melody.loc[dream, "in_key"], "random walk": melody.loc["random walk", "in_key"],
            "difference": difference.difference, "low": difference.low, "high": difference.high}
