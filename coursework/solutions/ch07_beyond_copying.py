"""Exercise 7.2 — reference solution: how many tokens ahead does the most likely dream (T = 0) beat copying?"""
from wmlib.analysis import coherence


def answer(profile: str = "default") -> dict:
    study, _ = coherence.DreamStudy.for_book(profile=profile)
    curves = study.horizon_curves()
    ahead = coherence.ahead_of(curves, "dream (T=0)", "copy last token")
    horizons = sorted(curves["horizon"].unique())
    first = coherence.difference(curves, "dream (T=0)", "copy last token", horizons[0], "top1", True)
    return {"beats_up_to_ms": 40 * int(horizons[ahead - 1]) if ahead else 0, "difference_40ms": first.difference}
