"""The one seed stride: derived seeds are `base * SEED_STRIDE + k` (or `base + SEED_STRIDE * k`).

A prime above any count of epochs, processes or batches a run reaches, so seeds derived from different
bases (or processes) never coincide. Changing it changes every sampled order and every evaluation.
"""

SEED_STRIDE = 1_000_003
