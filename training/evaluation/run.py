"""`python run.py genie_redux eval config=<model config> eval.model_dpath=<checkpoint dir> ...`.

Loads the checkpoint through the WorldModel API, draws `eval.num_sequences` test windows balanced
across games, runs the protocol (one or several processes under `accelerate launch`) and writes
results.json, results.md, psnr_per_frame.png, gifs/ and report.html into `eval.output_dpath`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from common.errors import UserError
from common.paths import ensure_writable_dpath
from models.checkpoint import record_evaluation
from models.world_model import PRECISIONS, WorldModel
from training.evaluation.fid import load_inception
from training.evaluation.play_checks import PlaySettings, action_response, drift
from training.evaluation.protocol import EnvTable, evaluate
from training.evaluation.report import markdown_tables, write_reports
from training.evaluation.settings import EvalSettings


def load_world_model(
    model_dpath: str | None, device: torch.device, image_size: int, precision: str = "auto"
) -> WorldModel:
    """The checkpoint as a WorldModel; a missing, tokenizer or wrong-size checkpoint, or an unknown
    `precision` (eval.precision), is a UserError."""
    if precision not in PRECISIONS:
        raise UserError(f"eval.precision={precision} is unknown; use one of {', '.join(PRECISIONS)}")
    if not model_dpath or not Path(model_dpath).is_dir():
        raise UserError(
            f"eval.model_dpath={model_dpath} is not a checkpoint directory; point it at one (e.g. <run>/best_model)"
        )
    try:
        return WorldModel.from_checkpoint(
            model_dpath, device, expected_image_size=image_size, precision=precision
        )
    except ValueError as error:
        raise UserError(f"{error} (eval.model_dpath; the test data is {image_size} px)") from None


def build_loader(
    eval_cfg: DictConfig, settings: EvalSettings, split_seed: int, pin_memory: bool = False
) -> Any:
    """Test windows of num_first_frames + sample_num_frames frames, drawn with equal weight per game;
    `pin_memory` for a CUDA device."""
    from data.datasets import WindowDataset, balanced_sampler, make_dataloader

    dpath = Path(eval_cfg.dataset_root_dpath) / str(eval_cfg.dataset_name)
    if not dpath.is_dir():
        raise UserError(f"no episode store at {dpath}; set eval.dataset_root_dpath / eval.dataset_name")
    dataset = WindowDataset(dpath, eval_cfg.split, num_frames=settings.num_frames, split_seed=split_seed)
    sampler = balanced_sampler(dataset, settings.num_sequences, seed=settings.seed)
    return make_dataloader(
        dataset,
        eval_cfg.batch_size,
        sampler=sampler,
        num_workers=eval_cfg.num_workers,
        seed=settings.seed,
        pin_memory=pin_memory,
    )


def check_horizon(world_model: WorldModel, settings: EvalSettings) -> None:
    """one_go samples every frame jointly, so prime + generated frames must fit the dynamics' context."""
    if settings.inference_method == "one_go" and settings.num_frames > world_model.max_frames:
        raise UserError(
            f"one_go needs num_first_frames + sample_num_frames <= {world_model.max_frames} (got {settings.num_frames}); "
            "use eval.inference_method=autoregressive or fewer frames"
        )


def play_settings(play_cfg: DictConfig, seed: int) -> PlaySettings:
    """`eval.play` as PlaySettings; a value no check can use is one UserError line."""
    play = PlaySettings(**{k: play_cfg[k] for k in play_cfg}, seed=seed)
    for name in (
        "response_frames",
        "response_starts",
        "drift_frames",
        "drift_starts",
        "reference_frames",
        "steps",
    ):
        least = 0 if name in ("response_frames", "drift_frames") else 1
        if getattr(play, name) < least:
            raise UserError(f"eval.play.{name}={getattr(play, name)} must be >= {least}")
    if not 0 <= play.temperature <= 10:
        raise UserError(f"eval.play.temperature={play.temperature} must be in 0..10")
    return play


def run_play_checks(world_model: WorldModel, dataset: Any, play: PlaySettings, num_prime: int) -> dict:
    """The play checks `eval.play` asks for (training/evaluation/play_checks.py), on the test windows."""
    if play.drift_frames == 0 and play.response_frames == 0:
        return {}
    env_actions = dataset.env_action_ids() if world_model.is_action_guided else [
        list(range(world_model.num_actions)) for _ in dataset.env_names
    ]  # fmt: skip
    figures = {}
    if play.response_frames > 0:
        figures["action_response"] = action_response(world_model, dataset, env_actions, play, num_prime)
    if play.drift_frames > 0:
        figures["drift"] = drift(world_model, dataset, env_actions, play, num_prime)
    return figures


def run_evaluation(cfg: DictConfig, command: str | None = None) -> int:
    """Evaluate `cfg.eval.model_dpath` on the test split; print the table and the report path, and add the
    results to the checkpoint's model card (`command`: the command line that ran it, for the card)."""
    from accelerate import Accelerator

    eval_cfg = cfg.eval
    settings = EvalSettings.from_config(eval_cfg)
    play = play_settings(eval_cfg.play, settings.seed)
    if eval_cfg.batch_size < 1:
        raise UserError(f"eval.batch_size must be >= 1, got {eval_cfg.batch_size}")
    # One process unless started by `accelerate launch`; cpu=True is what makes a CPU-only launch use gloo.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    is_cuda = accelerator.device.type == "cuda"
    loader = build_loader(eval_cfg, settings, split_seed=cfg.train.split_seed, pin_memory=is_cuda)
    dataset = loader.dataset
    world_model = load_world_model(
        eval_cfg.model_dpath, accelerator.device, dataset.image_size, eval_cfg.precision
    )
    check_horizon(world_model, settings)
    # after the inputs (a bad model writes nothing), before minutes of evaluation
    ensure_writable_dpath(eval_cfg.output_dpath, "eval.output_dpath")
    loader = accelerator.prepare(loader)  # shards the batches over processes
    feature_extractor, fid_message = load_inception(eval_cfg.fid_weights_fpath)
    if accelerator.is_main_process:
        print(fid_message, flush=True)
    result = evaluate(
        world_model,
        loader,
        settings,
        EnvTable.of_dataset(dataset),
        feature_extractor=feature_extractor,
        accelerator=accelerator,
        notes=[] if feature_extractor is not None else [fid_message],
    )
    if not accelerator.is_main_process:
        return 0
    result.settings.update(
        model_dpath=eval_cfg.model_dpath,
        dataset=str(Path(eval_cfg.dataset_root_dpath) / str(eval_cfg.dataset_name)),
        split=eval_cfg.split,
        batch_size=eval_cfg.batch_size,
        num_processes=accelerator.num_processes,
        precision=world_model.precision,
    )
    result.play = run_play_checks(world_model, dataset, play, settings.num_first_frames)
    paths = write_reports(result, eval_cfg.output_dpath, gif_fps=float(eval_cfg.gif_fps))
    card = {
        "metrics": {f"{result.mode}/{k}": v for k, v in result.metrics.items() if v is not None},
        "dataset": result.settings["dataset"],
        "split": eval_cfg.split,
        **({"command": command} if command else {}),
    }
    record_evaluation(eval_cfg.model_dpath, card)
    print(markdown_tables(result))
    print(f"report: {paths['html']}")
    return 0
