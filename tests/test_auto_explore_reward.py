"""AutoExplore's world-model reward: its value on fixed logits, frame/action alignment, batched == per env,
and the WorldModel per-row re-prime it relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.rewards import WorldModelRewardSettings, WorldModelUncertaintyReward, uncertainty_score
from data.actions import RETRO_ACTIONS, action_ids
from envs.vector import VecStep
from models.presets import build
from models.world_model import WorldModel


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


IDS = action_ids(RETRO_ACTIONS)  # the game's 5 actions as vocabulary ids


def test_uncertainty_score_is_the_mean_of_the_top_quarter_of_token_entropies_over_log_k():
    peaked = torch.tensor([30.0, 0.0, 0.0, 0.0])  # entropy ~0
    uniform = torch.zeros(4)  # entropy log 4 -> 1 after normalising
    half = torch.tensor([0.0, 0.0, -1e9, -1e9])  # entropy log 2 -> 0.5
    logits = torch.stack(
        [
            torch.stack([uniform, half] + [peaked] * 6),  # top 2 of 8: (1 + 0.5) / 2
            torch.stack([half] * 8),  # 0.5
            torch.stack([peaked] * 8),  # ~0
        ]
    )  # [3, 8, 4]
    expected = torch.tensor([0.75, 0.5, 0.0])
    torch.testing.assert_close(uncertainty_score(logits), expected, atol=1e-4, rtol=0)
    one_token = torch.log(torch.tensor([[[0.7, 0.1, 0.1, 0.1]]]))
    entropy = -(0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1))
    torch.testing.assert_close(uncertainty_score(one_token), torch.tensor([entropy / math.log(4)]))


def tiny_wm() -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(build("genie_redux_guided", "tiny"))


def test_reset_rows_equals_a_fresh_reset_of_that_row_and_leaves_the_others():
    g = torch.Generator().manual_seed(1)
    frames, actions = torch.rand(3, 4, 3, 16, 16, generator=g), torch.randint(0, 7, (3, 3), generator=g)
    new_frames, new_actions = (
        torch.rand(1, 4, 3, 16, 16, generator=g),
        torch.randint(0, 7, (1, 3), generator=g),
    )
    step_actions = torch.tensor([[2], [5], [1]])
    wm = tiny_wm()
    wm.reset(frames, actions)
    wm.reset(frames, actions)
    wm.reset_rows(torch.tensor([1]), new_frames, new_actions)
    replaced = wm.next_frames_logits(step_actions)
    fresh = tiny_wm()
    fresh.reset(new_frames, new_actions)
    torch.testing.assert_close(
        replaced[1:2], fresh.next_frames_logits(step_actions[1:2]), atol=1e-5, rtol=1e-5
    )
    untouched = tiny_wm()
    untouched.reset(frames, actions)
    before = untouched.next_frames_logits(step_actions)
    torch.testing.assert_close(replaced[[0, 2]], before[[0, 2]])
    assert not torch.allclose(replaced[1], before[1])
    # generating after reset_rows decodes and commits as usual
    assert wm.step(torch.tensor([1, 2, 3]), steps=1).frames.shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="needs 5 prime frames"):
        wm.reset_rows(torch.tensor([0]), new_frames[:, :3], new_actions[:, :2])


def reward_source(
    dpath, context_frames: int = 3, n_preds: int = 1, unscored: str = "zero"
) -> WorldModelUncertaintyReward:
    settings = WorldModelRewardSettings(str(dpath), n_preds, context_frames, "cpu", unscored=unscored)
    return WorldModelUncertaintyReward(settings, IDS, image_size=16)


def scripted_episode(num_envs: int, num_steps: int, seed: int):
    """Random frames uint8 [T+1, N, 16, 16, 3], local actions [T, N], dones [T, N] (a few episode ends)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_steps + 1, num_envs, 16, 16, 3), dtype=np.uint8)
    actions = rng.integers(0, len(IDS), (num_steps, num_envs))
    dones = np.zeros((num_steps, num_envs), dtype=bool)
    dones[4, 0] = dones[9, num_envs - 1] = True  # env 0 restarts at frame 5, the last env at frame 10
    dones[6, num_envs // 2] = num_envs > 2
    return frames, actions, dones


def run_source(source, frames, actions, dones) -> np.ndarray:
    source.reset(frames[0])
    rewards = []
    for t in range(len(actions)):
        step = VecStep(frames[t + 1], np.zeros(frames.shape[1], np.float32), dones[t])
        rewards.append(source(actions[t], step))
    return np.stack(rewards)  # [T, N]


def test_frame_action_alignment_the_prediction_is_of_the_frame_the_taken_action_leads_to(
    tiny_world_model_dpath,
):
    """The first scored step of an episode equals a fresh WorldModel primed with that episode's frames
    f_0..f_{C-1} and actions a_0..a_{C-2}, generating the frame a_{C-1} leads to (one MaskGIT step)."""
    c = 3
    frames, actions, dones = scripted_episode(2, 12, seed=0)
    rewards = run_source(reward_source(tiny_world_model_dpath, c), frames, actions, dones)
    assert (rewards[: c - 1] == 0).all() and (rewards[c - 1] > 0).all()  # 0 until C frames are seen
    ids = torch.tensor(IDS)

    def reference(first_frame: int, env: int) -> float:
        wm = WorldModel.from_checkpoint(tiny_world_model_dpath)
        prime = torch.from_numpy(frames[first_frame : first_frame + c, env]).permute(0, 3, 1, 2)[None] / 255.0
        wm.reset(prime, ids[actions[first_frame : first_frame + c - 1, env]][None])
        taken = ids[actions[first_frame + c - 1, env]].reshape(1, 1)
        logits = wm.generate(taken, steps=1, temperature=1.0, schedule="cosine", generator=None)[1]
        return float(uncertainty_score(logits)[0])

    assert rewards[c - 1, 0] == pytest.approx(reference(0, 0), abs=1e-5)
    # env 0's episode ends at step 4: frame 5 starts the next one, whose first scored step is 5 + C - 1
    assert (rewards[5 : 5 + c - 1, 0] == 0).all()
    assert rewards[5 + c - 1, 0] == pytest.approx(reference(5, 0), abs=1e-5)
    # the same history under another action at that step gives another reward: the action is read there
    other = actions.copy()
    other[c - 1, 0] = (actions[c - 1, 0] + 1) % len(IDS)
    changed = run_source(reward_source(tiny_world_model_dpath, c), frames, other, dones)
    assert changed[c - 1, 0] != pytest.approx(rewards[c - 1, 0], abs=1e-7)
    assert changed[c - 1, 1] == pytest.approx(rewards[c - 1, 1], abs=1e-6)


@pytest.mark.parametrize("n_preds", [1, 2])
def test_one_batched_call_equals_one_call_per_env(tiny_world_model_dpath, n_preds):
    frames, actions, dones = scripted_episode(3, 14, seed=1)
    batched = run_source(reward_source(tiny_world_model_dpath, 3, n_preds), frames, actions, dones)
    for env in range(3):
        alone = run_source(
            reward_source(tiny_world_model_dpath, 3, n_preds),
            frames[:, env : env + 1],
            actions[:, env : env + 1],
            dones[:, env : env + 1],
        )
        np.testing.assert_allclose(batched[:, env], alone[:, 0], atol=1e-5)
    assert (batched > 0).sum() >= 20 and (batched <= 1).all()


def test_unscored_steps_earn_the_mean_of_the_scored_rewards_so_far_and_a_resume_continues_it(
    tiny_world_model_dpath,
):
    """With unscored=mean a new episode's first C-1 steps earn the running mean of every scored reward
    before them (the paper's zero made ending an episode cost and surviving pay); scored steps are the
    paper's own values; the statistics survive a save and load."""
    c = 3
    frames, actions, dones = scripted_episode(2, 12, seed=0)
    paper = run_source(reward_source(tiny_world_model_dpath, c), frames, actions, dones)
    filled = run_source(reward_source(tiny_world_model_dpath, c, unscored="mean"), frames, actions, dones)
    # env 0 restarts at step 5 and env 1 at step 10: C-1 unscored steps each, as at the start
    unscored = np.zeros_like(paper, dtype=bool)
    unscored[: c - 1] = True
    unscored[5 : 5 + c - 1, 0] = unscored[10 : 10 + c - 1, 1] = True
    assert (paper[unscored] == 0).all() and (paper[~unscored] > 0).all()
    np.testing.assert_allclose(filled[~unscored], paper[~unscored], atol=1e-6)
    assert (filled[: c - 1] == 0).all()  # nothing scored yet: nothing to average
    for t in (5, 6):  # the mean of everything scored up to step t (env 1's reward at t included)
        before = paper[: t + 1][~unscored[: t + 1]]
        assert filled[t, 0] == pytest.approx(before.mean(), rel=1e-5) and filled[t, 0] > 0
    # a resumed source continues the statistics: its first fill is the mean of the run's scored rewards
    source = reward_source(tiny_world_model_dpath, c, unscored="mean")
    run_source(source, frames, actions, dones)
    resumed = reward_source(tiny_world_model_dpath, c, unscored="mean")
    resumed.load_state_tensors(source.state_tensors())
    after = run_source(resumed, frames[:3], actions[:2], dones[:2])
    assert after[0, 0] == pytest.approx(paper[~unscored].mean(), rel=1e-5)
    with pytest.raises(Exception, match="reward.unscored must be one of zero, mean"):
        reward_source(tiny_world_model_dpath, c, unscored="median")
