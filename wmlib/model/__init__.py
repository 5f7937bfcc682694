"""Stage 2, the world model: what it is, how it trains, where its runs live, how well it predicts, and latents.

``categorical`` (DreamerV3's categorical latents) and ``rssm_loop`` (the RSSM's time loop written for speed) ->
``models`` (the models, readable top to bottom) -> ``checkpoints`` (run files, safetensors, never pickle) ->
``train`` (the loop, exact resume, DDP) -> ``runs`` (the book's named models) -> ``evaluate`` (next-token
retrieval against baselines) and ``encode`` (audio of your own -> per-token latents).
"""
