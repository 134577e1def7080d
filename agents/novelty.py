"""Is a reward a novelty signal? Its ROC AUC as a detector of frames not seen before.

`measure_novelty`: a random agent plays a game for a number of steps of consecutive episodes seeded as
the generator seeds them; at every scored step the AutoExplore reward (`WorldModelUncertaintyReward`, the
one the agent is trained on) is computed for the frame the action leads to, and that frame is novel when
its screen (the 16x16, 3-bit thumbnail of agents/coverage.py) has not been seen before in this
measurement. Used by experiments/uncertainty_novelty.py (real games) and experiments/exploration_game.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.rewards import WorldModelRewardSettings


def roc_auc(scores: np.ndarray, is_positive: np.ndarray) -> float | None:
    """P(score of a random positive > score of a random negative), ties counting half (Mann-Whitney U)."""
    positives, negatives = scores[is_positive], scores[~is_positive]
    if len(positives) == 0 or len(negatives) == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    tied_ranks = np.cumsum(counts) - (counts - 1) / 2  # 1-based rank of each distinct value, ties averaged
    u = tied_ranks[inverse][is_positive].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def measure_novelty(
    game: str,
    settings: WorldModelRewardSettings,
    image_size: int,
    frame_skip: int,
    max_episode_steps: int,
    num_steps: int,
    seed: int,
) -> dict[str, Any]:
    """One game, random agent: per scored step (reward, pixel change, is the next screen new) -> the
    summary row: the ROC AUC of the reward and of the pixel change |f_{t+1} - f_t|, mean rewards."""
    from agents.coverage import screen_key
    from agents.episodes import play_episodes, seeds_like_generation
    from agents.random_policy import RandomPolicy
    from agents.rewards import WorldModelUncertaintyReward
    from envs import make_env
    from envs.vector import VecStep

    env = make_env(game, image_size, frame_skip)
    source = WorldModelUncertaintyReward(settings, list(env.action_ids), image_size)
    rewards, changes, novel, seen, episodes = [], [], [], set(), 0
    policy, seeds = RandomPolicy(len(env.action_names)), seeds_like_generation(seed, game)
    try:  # the reward source runs its world model under no_grad itself
        for transition in play_episodes(env, policy, seeds, max_episode_steps, num_steps):
            observation, following = transition.observation, transition.next_observation
            if transition.t == 0:
                source.reset(np.array(observation[None]))
                seen.add(screen_key(observation))
                episodes += 1
            step = VecStep(following[None].copy(), np.zeros(1, np.float32), np.zeros(1, bool))
            reward = float(source(np.asarray([transition.action]), step)[0])
            key = screen_key(following)
            if transition.t >= settings.context_frames - 1:  # scored: the context holds C real frames
                rewards.append(reward)
                changes.append(float(np.abs(following.astype(np.int16) - observation).mean()))
                novel.append(key not in seen)
            seen.add(key)
    finally:
        env.close()
    rewards_, changes_, novel_ = np.asarray(rewards), np.asarray(changes), np.asarray(novel, dtype=bool)
    return {
        "game": game,
        "scored_steps": len(rewards_),
        "novel_share": float(novel_.mean()) if len(novel_) else None,
        "reward_auc": roc_auc(rewards_, novel_),
        "pixel_change_auc": roc_auc(changes_, novel_),
        "reward_novel": float(rewards_[novel_].mean()) if novel_.any() else None,
        "reward_familiar": float(rewards_[~novel_].mean()) if (~novel_).any() else None,
        "episodes": episodes,
    }
