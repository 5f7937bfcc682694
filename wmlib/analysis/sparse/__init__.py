"""Sparse features: a sparse autoencoder's dictionary of a representation, each feature labelled from the corpus's
exact labels and tested by erasure and steering.

- :mod:`.dictionary`: the TopK sparse autoencoder (``overcomplete``), trained and cached;
- :mod:`.quality`: variance explained, L0, dead and dense features, seed stability;
- :mod:`.labelling`: the label each feature matches best (F1), and the share of features that match one;
- :mod:`.causal`: erasure (features zeroed until a probe falls to chance) and steering (a feature's direction added
  to the model's state, read by its own next-token retrieval);
- :mod:`.study`: the chapter's study over the model, log-mel and the random-init model.

Used by the chapter "Sparse features".
"""
