"""`python run.py demo [key=value ...]`: data → tokenizer → GenieRedux-G → evaluation, on bundled games.

Each step runs as its own `run.py` command through the one runner (pipelines/runner.py: printed first,
so the demo doubles as a tutorial) and is resumable on its own: generation skips recorded episodes,
training resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from common.config import compose_config
from pipelines.overrides import TrainingPlan, training_overrides
from pipelines.runner import CommandRunner

REPO_DPATH = Path(__file__).resolve().parents[1]
CONFIG_DPATH = Path(__file__).resolve().parent / "configs"
DATASET_NAME = "retro_act/pretrain"


@dataclass(frozen=True)
class TrainingStage:
    """The demo config's `tokenizer:` and `dynamics:` sections (an extra or missing key fails loudly)."""

    num_train_steps: int
    batch_size: int
    lr_max: float
    lr_min: float
    # the model preset's fields this training changes, e.g. {"tdce": false} (models/config.py names: the
    # tokenizer's for `tokenizer:`, the dynamics model's for `dynamics:`)
    model: dict = field(default_factory=dict)


def model_override_args(part: str, stage: TrainingStage) -> tuple[str, ...]:
    """`++model_overrides.<part>.<key>=<value>` for each of the stage's model fields (the training's Hydra
    syntax; `++` adds the key or replaces it)."""
    text = lambda value: str(value).lower() if isinstance(value, bool) else str(value)  # noqa: E731
    return tuple(
        f"++model_overrides.{part}.{key}={text(value)}" for key, value in sorted(stage.model.items())
    )


def training_plan(cfg: DictConfig, part: str, run_dpath: Path) -> TrainingPlan:
    """Both training steps (`part`: "tokenizer" or "dynamics"): the demo's data and size, the part's schedule
    and model fields."""
    stage = TrainingStage(**cfg[part])
    return TrainingPlan(Path(cfg.output_dpath) / "datasets", DATASET_NAME, run_dpath, stage.num_train_steps,
                        stage.batch_size, stage.lr_max, stage.lr_min, cfg.model, cfg.image_size, cfg.grad_clip,
                        extra=(f"train.seed={cfg.seed}", *model_override_args(part, stage)))  # fmt: skip


def evaluation_args(cfg: DictConfig, dynamics_dpath: Path, datasets_dpath: Path) -> list[str]:
    """`genie_redux eval` arguments: the world model in `dynamics_dpath` on the test windows of the demo's store
    under `datasets_dpath`, at the demo's evaluation settings."""
    return [
        "config=genie_redux_guided",
        f"run_dpath={dynamics_dpath}",
        f"train.dataset_root_dpath={datasets_dpath}",
        f"train.dataset_name={DATASET_NAME}",
        f"eval.model_dpath={dynamics_dpath}",  # a run directory: its best_model/ (find_checkpoint)
        f"eval.num_sequences={cfg.eval.num_sequences}",
        f"eval.inference_steps={cfg.eval.inference_steps}",
    ]


def build_steps(cfg: DictConfig) -> list[tuple[str, list[str]]]:
    out = Path(cfg.output_dpath)
    tokenizer_dpath, dynamics_dpath = out / "tokenizer", out / "genie_redux_guided"
    eval_common = evaluation_args(cfg, dynamics_dpath, out / "datasets")
    return [
        (
            "record game play",
            [
                "generate",
                f"config={cfg.generate.config}",
                f"n_sessions={cfg.generate.n_sessions}",
                f"n_steps_max={cfg.generate.n_steps_max}",
                f"agent.repeat_prob={cfg.generate.repeat_prob}",
                f"image_size={cfg.image_size}",
                f"output_dpath={out / 'datasets' / DATASET_NAME}",
            ],
        ),
        (
            "train the video tokenizer",
            [
                "genie_redux",
                "train",
                "config=tokenizer",
                *training_overrides(training_plan(cfg, "tokenizer", tokenizer_dpath)),
            ],
        ),
        (
            "train GenieRedux-G (frozen tokenizer, real actions)",
            [
                "genie_redux",
                "train",
                "config=genie_redux_guided",
                f"tokenizer_dpath={tokenizer_dpath}",
                *training_overrides(training_plan(cfg, "dynamics", dynamics_dpath)),
                f"train.validation.maskgit_steps={cfg.eval.inference_steps}",
                f"eval.inference_steps={cfg.eval.inference_steps}",
            ],
        ),
        (
            "evaluate replication (ground-truth actions) and play (keys vs sampling noise, long random-key play)",
            [
                "genie_redux",
                "eval",
                *eval_common,
                f"eval.play.response_frames={cfg.eval.response_frames}",
                f"eval.play.drift_frames={cfg.eval.drift_frames}",
            ],  # fmt: skip
        ),
        (
            f"evaluate control (every sequence pressing {cfg.eval.control_action})",
            [
                "genie_redux",
                "eval",
                *eval_common,
                f"eval.action_to_take={cfg.eval.control_action}",
                f"eval.output_dpath={dynamics_dpath / 'control'}",
            ],
        ),
    ]


def read_metrics(results_fpath: Path) -> dict:
    return json.loads(results_fpath.read_text())["metrics"] if results_fpath.is_file() else {}


def print_summary(cfg: DictConfig, durations: list[float]) -> None:
    out = Path(cfg.output_dpath)
    dynamics_dpath = out / "genie_redux_guided"
    replication = read_metrics(dynamics_dpath / "eval" / "results.json")
    control = read_metrics(dynamics_dpath / "control" / "results.json")
    fmt = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731
    print(f"\ndemo finished in {sum(durations) / 60:.1f} min; everything is under {out}")
    print(f"  episodes:   {out / 'datasets' / DATASET_NAME}")
    print(f"  tokenizer:  {out / 'tokenizer'}  (metrics.jsonl, samples/)")
    print(f"  world model: {dynamics_dpath}  (best_model/)")
    print(
        f"  replication: PSNR {fmt(replication.get('psnr'))} dB, SSIM {fmt(replication.get('ssim'))} "
        f"(copying the last prime frame: {fmt(replication.get('psnr_copy_last'))} dB, "
        f"{fmt(replication.get('ssim_copy_last'))}), ΔPSNR@4 {fmt(replication.get('delta_psnr_genie'))} dB, "
        f"FID {fmt(replication.get('fid'))}"
    )
    print(
        f"  control ({cfg.eval.control_action}): PSNR vs what the agent really did {fmt(control.get('psnr'))} dB"
    )
    for line in play_lines(read_play(dynamics_dpath / "eval" / "results.json")):
        print(line)
    print(f"  reports: {dynamics_dpath / 'eval' / 'report.html'}")
    print(f"           {dynamics_dpath / 'control' / 'report.html'}")
    print(f"\nplay it in your browser:\n$ {play_command(cfg)}")


def read_play(results_fpath: Path) -> dict:
    return json.loads(results_fpath.read_text()).get("play", {}) if results_fpath.is_file() else {}


def play_lines(play: dict) -> list[str]:
    """The play checks in a sentence each: do the keys matter, does long play stay a game screen."""
    lines = []
    response = play.get("action_response")
    if response:
        ratio = response["ratio"]
        times = "n/a (greedy sampling)" if ratio is None else f"{ratio:.2f}x"
        lines.append(
            f"  keys: holding different keys changes the frames {times} as much as re-sampling with another seed "
            f"(action MSE {response['action_mse']:.5f} vs seed MSE {response['seed_mse']:.5f}; above 1x the keys "
            "matter more than chance)"
        )
    for game, figures in sorted(play.get("drift", {}).items()):
        lines.append(
            f"  long play, {game}: PSNR to the nearest real frame {figures['nearest_real_psnr'][0]:.1f} dB at frame "
            f"{figures['frames'][0]} -> {figures['nearest_real_psnr'][-1]:.1f} dB at frame {figures['frames'][-1]}; "
            f"codes no real frame uses {figures['unseen_code_share'][-1]:.1%}"
        )
    return lines


def play_command(cfg: DictConfig) -> str:
    """The `run.py play` command for this demo's world model and dataset (bare when they are the defaults)."""
    out = Path(cfg.output_dpath)
    if out == Path.cwd() / "outputs" / "demo":  # play's defaults point here
        return "python run.py play"
    args = [
        "play",
        f"model_dpath={out / 'genie_redux_guided'}",  # a run folder: its best_model/
        f"dataset_dpath={out / 'datasets' / DATASET_NAME}",
    ]
    return f"python run.py {shlex.join(args)}"


def main(mode: str | None, args: list[str]) -> int:
    cfg = compose_config(CONFIG_DPATH, "demo", args)
    steps = build_steps(cfg)
    runner = CommandRunner()
    durations = []
    for index, (title, step_args) in enumerate(steps, 1):
        print(f"\n[{index}/{len(steps)}] {title}", flush=True)
        durations.append(runner.run(step_args))
    print_summary(cfg, durations)
    return 0
