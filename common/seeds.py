"""Derived seeds.

The one seed stride: derived seeds are `base * SEED_STRIDE + k` (or `base + SEED_STRIDE * k`). A prime
above any count of epochs, processes or batches a run reaches, so seeds derived from different bases (or
processes) never coincide. Changing it changes every sampled order and every evaluation.

The per-episode seed of every recording and coverage count: `episode_seed(seed, env_name, session)`, so
worker count and sharding never change an episode's bytes.
"""

import hashlib

SEED_STRIDE = 1_000_003


def episode_seed(seed: int, env_name: str, session_index: int) -> int:
    """A 63-bit seed from (seed, env_name, session_index); stable across Python versions and runs."""
    digest = hashlib.sha256(f"{seed}|{env_name}|{session_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
