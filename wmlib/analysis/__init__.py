"""Stage 3, analyses of what the model learned: probes, representational similarity, dreams, interventions.

Analyses read latents (:func:`wmlib.encode`, ``model.features``) and labels (:class:`wmlib.TokenSet`); they never
train the world model.  Empty for now: the chapters on probes, real sound, dreams and RSA add their modules here.
"""
