"""Train/val/test split by session: deterministic from `split_seed`, never splitting an episode.

Within each env, sessions are ranked by a hash of (split_seed, env_name, session_index) and the ranking
is cut by the split fractions. Splitting per env keeps every env in every split (balanced evaluation);
hashing instead of shuffling means the ranking of existing sessions does not depend on which other
sessions exist. Adding sessions can still move a session that sits at a cut into the next split.
"""

from __future__ import annotations

import hashlib
import math

from common.errors import UserError

SPLITS = ("train", "val", "test", "all")  # all: every session (a store recorded as a test set)
DEFAULT_SPLIT_FRACTIONS = (0.9, 0.05, 0.05)


def check_fractions(fractions: tuple[float, float, float] | list[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) < 0 or abs(sum(values) - 1) > 1e-6 or values[0] <= 0:
        raise UserError(
            f"split_fractions {list(fractions)} must be 3 non-negative numbers (train>0, val, test) summing to 1"
        )
    return values  # type: ignore[return-value]


def split_counts(num_sessions: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Sessions per split: rounded fractions, but every split with a positive fraction gets at least
    one session whenever there are enough sessions for that (so 3 sessions still give train/val/test)."""
    wanted = [i for i in range(3) if fractions[i] > 0]
    if num_sessions < len(wanted):  # too few to cover every split: train first, then val
        return tuple(1 if i in wanted[:num_sessions] else 0 for i in range(3))  # type: ignore[return-value]
    raw = [num_sessions * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    by_remainder = sorted(range(3), key=lambda i: (counts[i] - raw[i], i))  # largest remainder first
    for i in by_remainder[: num_sessions - sum(counts)]:
        counts[i] += 1
    for i in wanted:
        if counts[i] == 0:  # the largest split has >= 2 sessions here, so it can give one
            donor = max(range(3), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[i] += 1
    return counts[0], counts[1], counts[2]


def _rank_key(split_seed: int, env_name: str, session_index: int) -> bytes:
    return hashlib.sha256(f"{split_seed}/{env_name}/{session_index}".encode()).digest()


def sessions_in_split(
    sessions: list[int], env_name: str, split: str, fractions: tuple[float, float, float], split_seed: int
) -> set[int]:
    """The subset of one env's session indices that belongs to `split`."""
    if split == "all":
        return set(sessions)
    ranked = sorted(set(sessions), key=lambda s: _rank_key(split_seed, env_name, s))
    num_train, num_val, _ = split_counts(len(ranked), fractions)
    bounds = {
        "train": (0, num_train),
        "val": (num_train, num_train + num_val),
        "test": (num_train + num_val, len(ranked)),
    }
    lo, hi = bounds[split]
    return set(ranked[lo:hi])
