"""The evaluation protocol on synthetic "moving square" worlds whose step moves the square by the action."""

from __future__ import annotations

import pytest
import torch

from common.errors import UserError
from data.actions import FIRST_VOCABULARY_SIZE, action_id
from training.evaluation.protocol import EnvTable, evaluate
from training.evaluation.settings import EvalSettings

SIZE, SIDE = 16, 3  # frame size (SSIM's 11-px window fits) and square side
MOVES = {
    action_id("RIGHT"): (0, 2),
    action_id("LEFT"): (0, -2),
    action_id("UP"): (-2, 0),
    action_id("DOWN"): (2, 0),
}


def render(positions: torch.Tensor) -> torch.Tensor:
    """positions long [B, 2] (top-left row, col) -> frames [B, 3, SIZE, SIZE]: a white square on black."""
    frames = torch.zeros(positions.shape[0], 3, SIZE, SIZE)
    for index, (row, col) in enumerate(positions.tolist()):
        frames[index, :, row : row + SIDE, col : col + SIDE] = 1.0
    return frames


def locate(frames: torch.Tensor) -> torch.Tensor:
    """frames [B, 3, H, W] -> top-left corner of the square, long [B, 2]."""
    mask = frames[:, 0] > 0.5  # [B, H, W]
    rows = mask.any(2).float().argmax(1)
    cols = mask.any(1).float().argmax(1)
    return torch.stack([rows, cols], dim=1)


def move(positions: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    deltas = torch.tensor([MOVES.get(int(a), (0, 0)) for a in actions])  # [B, 2]
    return (positions + deltas).clamp(0, SIZE - SIDE)


class MovingSquareWorld:
    """WorldModel duck-type. `follows_actions=False` ignores them (the square never moves)."""

    device = torch.device("cpu")

    def __init__(self, follows_actions: bool = True, latent: bool = False) -> None:
        self.follows_actions, self.is_action_guided = follows_actions, not latent
        self.num_actions = FIRST_VOCABULARY_SIZE  # what GenieRedux-G embeds for these games' actions
        self.rollout_calls: list[dict] = []

    def infer_actions(self, frames: torch.Tensor) -> torch.Tensor:
        """A perfect 'LAM': the move between consecutive frames, as the action id that makes it."""
        positions = torch.stack([locate(frames[:, t]) for t in range(frames.shape[1])], dim=1)  # [B, T, 2]
        steps = positions[:, 1:] - positions[:, :-1]  # [B, T-1, 2]
        by_move = {move_: action for action, move_ in MOVES.items()}
        return torch.tensor([[by_move.get(tuple(s), 0) for s in row.tolist()] for row in steps])

    def rollout(
        self,
        prime_frames,
        actions,
        method,
        steps,
        temperature,
        schedule,
        seed,
        prime_actions=None,
        anneal_temperature=False,
    ):
        self.rollout_calls.append(
            {"method": method, "steps": steps, "seed": seed, "num_prime": prime_frames.shape[1]}
        )
        positions, frames = locate(prime_frames[:, -1]), []
        for t in range(actions.shape[1]):
            if self.follows_actions:
                positions = move(positions, actions[:, t])
            frames.append(render(positions))
        return torch.stack(frames, dim=1)  # [B, N, 3, H, W]


def make_batches(
    num_batches: int, batch_size: int, num_frames: int, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """Ground-truth clips of the moving-square world with random moves; env_id alternates 0, 1."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(num_batches):
        positions = torch.randint(4, SIZE - SIDE - 4, (batch_size, 2), generator=generator)
        actions = torch.randint(1, 5, (batch_size, num_frames - 1), generator=generator)  # RIGHT..DOWN
        frames = [render(positions)]
        for t in range(num_frames - 1):
            positions = move(positions, actions[:, t])
            frames.append(render(positions))
        clip = torch.stack(frames, dim=1)  # [B, T, 3, H, W]
        uint8 = (clip * 255).to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous()  # [B, T, H, W, 3]
        batches.append({"frames": uint8, "actions": actions, "env_id": torch.arange(batch_size) % 2})
    return batches


SETTINGS = EvalSettings(
    num_first_frames=2, sample_num_frames=5, inference_steps=3, num_sequences=8, delta_psnr_frame=4
)


def test_delta_psnr_positive_when_the_model_follows_actions_and_zero_when_it_ignores_them() -> None:
    batches = make_batches(2, 4, SETTINGS.num_frames)
    follower = evaluate(MovingSquareWorld(), batches, SETTINGS, envs=EnvTable(["a", "b"]))
    assert follower.metrics["psnr"] == pytest.approx(100.0)  # real actions reproduce the clip exactly
    assert follower.metrics["ssim"] == pytest.approx(1.0)
    assert follower.metrics["delta_psnr_genie"] > 10.0
    assert follower.metrics["delta_psnr_upstream"] > 0.0
    # Only the 4th action differs in upstream's variant, so it moves the square less than all-random actions.
    assert follower.metrics["delta_psnr_upstream"] < follower.metrics["delta_psnr_genie"]

    ignorer = evaluate(MovingSquareWorld(follows_actions=False), batches, SETTINGS, envs=EnvTable(["a", "b"]))
    assert ignorer.metrics["delta_psnr_genie"] == 0.0
    assert ignorer.metrics["delta_psnr_upstream"] == 0.0
    assert ignorer.metrics["psnr"] < 60.0


class DerailedByUntrainedActions(MovingSquareWorld):
    """Ignores the game's actions (RIGHT..DOWN) but outputs garbage for ids the game never had."""

    def __init__(self) -> None:
        super().__init__(follows_actions=False)

    def rollout(self, prime_frames, actions, *args, **kwargs):
        frames = super().rollout(prime_frames, actions, *args, **kwargs)
        untrained = ~torch.isin(actions, torch.tensor(list(MOVES)))  # [B, N]
        return torch.where(untrained[:, :, None, None, None], torch.ones_like(frames), frames)


def test_random_actions_come_from_each_games_own_actions() -> None:
    batches = make_batches(2, 4, SETTINGS.num_frames)
    game_actions = [sorted(MOVES), sorted(MOVES)]  # both games have RIGHT, LEFT, UP, DOWN only
    restricted = evaluate(
        DerailedByUntrainedActions(), batches, SETTINGS, envs=EnvTable(["a", "b"], game_actions)
    )
    assert restricted.metrics["delta_psnr_genie"] == 0.0  # the model ignores every action the games have
    assert restricted.metrics["delta_psnr_upstream"] == 0.0
    everything = [list(range(FIRST_VOCABULARY_SIZE))] * 2
    unrestricted = evaluate(
        DerailedByUntrainedActions(), batches, SETTINGS, envs=EnvTable(["a", "b"], everything)
    )
    assert unrestricted.metrics["delta_psnr_genie"] > 1.0  # what drawing from the whole vocabulary reports

    control = EvalSettings(action_to_take="RIGHT", sample_num_frames=3, num_sequences=2, num_gifs=1)
    (clip,) = evaluate(
        MovingSquareWorld(),
        make_batches(1, 2, control.num_frames),
        control,
        envs=EnvTable(["a", "b"], [[action_id("RIGHT"), action_id("LEFT")], [action_id("UP")]]),
    ).clips
    assert list(clip.columns) == ["ground truth", "RIGHT", "LEFT"]  # clip 0 is game a: only its actions
    lacking = evaluate(
        MovingSquareWorld(), make_batches(1, 2, control.num_frames), control, envs=EnvTable(["a", "b"], [[action_id("RIGHT")], [action_id("UP")]]),
    )  # fmt: skip
    assert any("not one of these games' actions (never trained): b" in note for note in lacking.notes)


def test_latent_actions_are_inferred_from_the_ground_truth_clip() -> None:
    result = evaluate(
        MovingSquareWorld(latent=True),
        make_batches(1, 4, SETTINGS.num_frames),
        SETTINGS,
        envs=EnvTable(["a", "b"]),
    )
    assert result.metrics["psnr"] == pytest.approx(100.0)


def test_settings_reach_the_model_and_counts_stop_at_num_sequences() -> None:
    world = MovingSquareWorld()
    settings = EvalSettings(
        inference_method="autoregressive", inference_steps=7, sample_num_frames=3, num_sequences=5
    )
    result = evaluate(world, make_batches(4, 4, settings.num_frames), settings, envs=EnvTable(["a", "b"]))
    assert result.num_sequences == 8  # whole batches: two of four sequences reach 5
    assert {call["method"] for call in world.rollout_calls} == {"autoregressive"}
    assert {call["steps"] for call in world.rollout_calls} == {7}
    assert {call["num_prime"] for call in world.rollout_calls} == {2}
    assert result.metrics["delta_psnr_genie"] is None and any("ΔPSNR skipped" in n for n in result.notes)
    assert len(result.psnr_per_frame) == 3
    assert {name: game["num_sequences"] for name, game in result.per_game.items()} == {"a": 4, "b": 4}


def test_per_game_breakdown_separates_envs() -> None:
    batches = make_batches(1, 4, SETTINGS.num_frames)
    batches[0]["frames"][1::2, SETTINGS.num_first_frames :] = 0  # env 1: the future frames are blanked
    result = evaluate(MovingSquareWorld(), batches, SETTINGS, envs=EnvTable(["clean", "blank"]))
    assert result.per_game["clean"]["psnr"] == pytest.approx(100.0)
    assert result.per_game["blank"]["psnr"] < 20.0
    assert result.metrics["psnr"] == pytest.approx(sum(g["psnr"] for g in result.per_game.values()) / 2)


def test_control_mode_rolls_out_the_fixed_action_and_shows_every_action() -> None:
    settings = EvalSettings(action_to_take="RIGHT", sample_num_frames=3, num_sequences=2, num_gifs=1)
    result = evaluate(
        MovingSquareWorld(), make_batches(1, 2, settings.num_frames), settings, envs=EnvTable(["a", "b"])
    )
    assert result.mode == "control" and result.metrics["delta_psnr_genie"] is None
    (clip,) = result.clips
    assert list(clip.columns)[0] == "ground truth" and "RIGHT" in clip.columns and "LEFT" in clip.columns
    right = torch.from_numpy(clip.columns["RIGHT"]).permute(0, 3, 1, 2).float() / 255  # [T, 3, H, W]
    cols = locate(right)[:, 1]
    assert (cols[2:] - cols[1:-1] == 2).all() or (cols[-1] == SIZE - SIDE)  # moves right until the wall


def test_bad_control_action_is_a_user_error() -> None:
    with pytest.raises(UserError, match="action_to_take"):
        evaluate(
            MovingSquareWorld(),
            make_batches(1, 1, 12),
            EvalSettings(action_to_take="JUMP"),
            envs=EnvTable(["a"]),
        )
    with pytest.raises(UserError, match="latent"):
        evaluate(
            MovingSquareWorld(latent=True),
            make_batches(1, 1, 12),
            EvalSettings(action_to_take="RIGHT"),
            envs=EnvTable(["a"]),
        )


class TwoIdenticalProcesses:
    """Accelerator stand-in: reduce(sum) over two processes that saw the same data doubles every sum."""

    num_processes, process_index, is_main_process, device = 2, 0, True, torch.device("cpu")

    def reduce(self, tensor: torch.Tensor, reduction: str) -> torch.Tensor:
        assert reduction == "sum"
        return tensor * 2


def test_multi_process_reduces_sums_and_counts_not_means() -> None:
    batches = make_batches(1, 4, SETTINGS.num_frames)
    single = evaluate(MovingSquareWorld(follows_actions=False), batches, SETTINGS, envs=EnvTable(["a", "b"]))
    double = evaluate(
        MovingSquareWorld(follows_actions=False),
        batches,
        SETTINGS,
        envs=EnvTable(["a", "b"]),
        accelerator=TwoIdenticalProcesses(),
    )
    assert double.num_sequences == 2 * single.num_sequences
    assert double.metrics["psnr"] == pytest.approx(single.metrics["psnr"])
    assert double.psnr_per_frame == pytest.approx(single.psnr_per_frame)


def test_fid_runs_through_the_protocol_with_a_tiny_extractor() -> None:
    extractor = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Flatten(), torch.nn.LazyLinear(6)
    )
    extractor(torch.zeros(1, 3, SIZE, SIZE))  # materialise the lazy layer
    batches = make_batches(2, 4, SETTINGS.num_frames)
    exact = evaluate(
        MovingSquareWorld(), batches, SETTINGS, envs=EnvTable(["a", "b"]), feature_extractor=extractor
    )
    frozen = evaluate(
        MovingSquareWorld(follows_actions=False),
        batches,
        SETTINGS,
        envs=EnvTable(["a", "b"]),
        feature_extractor=extractor,
    )
    assert exact.metrics["fid"] == pytest.approx(0.0, abs=1e-6)
    assert frozen.metrics["fid"] > exact.metrics["fid"]
    assert evaluate(MovingSquareWorld(), batches, SETTINGS, envs=EnvTable(["a", "b"])).metrics["fid"] is None


@pytest.fixture(scope="module")
def tiny_checkpoint_and_store(tmp_path_factory):
    """A real (untrained) tiny GenieRedux-G checkpoint and a 2-game synthetic store at its 16 px."""
    from data.store_synthetic import write_synthetic_store
    from models.checkpoint import save_checkpoint
    from models.presets import build

    root = tmp_path_factory.mktemp("eval_e2e")
    torch.manual_seed(0)
    save_checkpoint(build("genie_redux_guided", "tiny"), root / "ckpt", {})
    write_synthetic_store(
        root / "data" / "syn", ["GameA-v0", "GameB-v0"], num_sessions=10, num_frames=20, image_size=16
    )
    return root


@pytest.mark.slow
@pytest.mark.parametrize("method", ["one_go", "autoregressive"])
def test_eval_command_on_a_tiny_checkpoint(
    tiny_checkpoint_and_store, method, tmp_path, monkeypatch, capsys
) -> None:
    import json

    from common.config import compose_config
    from training.cli import CONFIG_DPATH
    from training.evaluation.run import run_evaluation

    root = tiny_checkpoint_and_store
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no Inception weights there
    overrides = [
        "config=genie_redux_guided",
        f"run_dpath={tmp_path / 'run'}",
        f"eval.model_dpath={root / 'ckpt'}",
        f"eval.dataset_root_dpath={root / 'data'}",
        "eval.dataset_name=syn",
        f"eval.inference_method={method}",
        "eval.action_to_take=-1",
        "eval.sample_num_frames=4",
        "eval.inference_steps=2",
        "eval.num_sequences=4",
        "eval.batch_size=2",
        "eval.num_workers=0",
        f"eval.output_dpath={tmp_path / 'out'}",
    ]
    assert run_evaluation(compose_config(CONFIG_DPATH, "genie_redux", overrides)) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["num_sequences"] == 4 and results["settings"]["inference_method"] == method
    assert results["metrics"]["fid"] is None and "weights-inception-2015-12-05-6726825d.pth" in printed
    assert 0 < results["metrics"]["psnr"] < 100 and results["metrics"]["delta_psnr_genie"] is not None
    assert f"| PSNR (dB) | {results['metrics']['psnr']:.3f} |" in printed
    assert f"report: {tmp_path / 'out' / 'report.html'}" in printed
    assert len(list((tmp_path / "out" / "gifs").glob("*.gif"))) == 4


def test_copy_last_prime_frame_baseline_is_scored_like_the_model() -> None:
    """A model that ignores actions (the square never moves) *is* the copy baseline: identical figures."""
    batches = make_batches(2, 4, SETTINGS.num_frames)
    ignorer = evaluate(MovingSquareWorld(follows_actions=False), batches, SETTINGS, envs=EnvTable(["a", "b"]))
    assert ignorer.metrics["psnr_copy_last"] == pytest.approx(ignorer.metrics["psnr"])
    assert ignorer.metrics["ssim_copy_last"] == pytest.approx(ignorer.metrics["ssim"])
    assert ignorer.psnr_per_frame_copy == pytest.approx(ignorer.psnr_per_frame)
    for game in ignorer.per_game.values():
        assert game["psnr_copy"] == pytest.approx(game["psnr"])
    follower = evaluate(MovingSquareWorld(), batches, SETTINGS, envs=EnvTable(["a", "b"]))
    assert follower.metrics["psnr_copy_last"] == pytest.approx(ignorer.metrics["psnr"])  # same baseline
    assert follower.metrics["psnr"] > follower.metrics["psnr_copy_last"] + 20  # and the follower beats it
