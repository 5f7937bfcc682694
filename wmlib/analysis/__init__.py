"""Stage 3, analyses of what the model learned: probes, representational similarity, dreams, interventions.

Analyses read latents (``model.features``) and labels (:class:`wmlib.TokenSet`); they never train the world model.

- ``targets``: what a probe reads out, registered by name (add your own in a few lines);
- ``representations``: per-token arrays of every part of a model, its controls and the log-mel / MFCC baselines,
  cached on disk;
- ``probes``: the probes (linear, one hidden layer, supervised) with grouped cross-validation, control tasks, MDL
  and bootstrap intervals;
- ``probing``: the book's probing study (tokens, rows, tables in the form of CPC's, along training and horizon);
- ``latent_map``: UMAP maps of a representation;
- ``sparse``: sparse features — a TopK sparse autoencoder's dictionary of a representation (``overcomplete``), each
  feature labelled from the exact labels, its quality, seed stability, erasure and steering;
- ``real_sound``: the chapter "Real sound" (retrieval and source probes on held-out real recordings, the ablation);
- ``dreams``: observe k tokens, imagine n (the RSSM samples its prior; the transformer samples among candidate
  tokens by contrastive score); ``coherence``: dreams against the truth and rolled-out baselines, and probed;
- ``applications``: inpainting, melody variations, few-shot classification;
- ``interventions``: moving latents along probe directions, and resynthesis with one factor randomized;
- ``hear_api``: the HEAR API every encoder speaks, and the 40 ms token grid; ``encoders``: the encoders compared,
  by name (hand-made, the book's models, the ``pretrained`` networks whose weights ship in their wheels, any HEAR
  module), with ``torchaudio_compat`` standing in for torchaudio where those networks import it;
- ``rsa``: the shared stimuli, RDMs (rsatoolbox), Spearman, whitened Pearson and linear CKA with intervals over
  clips; ``similarity``: the book's comparison and its findings.
"""
