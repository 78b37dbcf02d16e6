"""The reference model-service (SPEC §8.4): trains only on Feature Service datasets, scores features.live.

It does no feature engineering: a model is trained on the columns of a dataset built by
``feature-service dataset build`` and scores each live vector as delivered, in the column order
named by its registry hash; a vector of any other registry is refused (the skew guard).
"""
