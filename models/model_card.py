"""The model card every world-model checkpoint carries: what the model is, what it was trained on, how far,
how well it did at its last validation (and evaluation), and the command that made it.

Markdown with YAML front matter, the shape the Hugging Face Hub reads for a repository's README.md.
models/checkpoint.py writes it into each checkpoint folder, from the checkpoint's own config (its kind,
preset, parts and the trainer's `extra`: step, trained_on, last_validation, command).
"""

from __future__ import annotations

from typing import Any

KIND_TITLES = {
    "tokenizer": "ST-ViViT video tokenizer (VQ-VAE)",
    "genie_redux": "GenieRedux world model (latent action model + MaskGIT dynamics)",
    "genie_redux_guided": "GenieRedux-G world model (MaskGIT dynamics on the real actions)",
}
NOT_RECORDED = "not recorded"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric_rows(metrics: dict[str, Any]) -> list[str]:
    return [f"| {name} | {_number(value)} |" for name, value in sorted(metrics.items()) if name != "step"]


def _actions_line(config: dict[str, Any]) -> str:
    kind = config["kind"]
    if kind == "genie_redux_guided":
        count = config["dynamics"]["num_actions"]
        return f"{count} named actions: the first {count} of the shared vocabulary (data/actions.py)"
    if kind == "genie_redux":
        return f"{config['lam']['num_latent_actions']} latent actions, learned from video by the LAM"
    return "none (a tokenizer)"


def render_model_card(
    config: dict[str, Any], num_parameters: int, evaluation: dict[str, Any] | None = None
) -> str:
    """The card's markdown. `config`: a checkpoint's config (models/checkpoint.py); `evaluation`: the key
    results of the last `genie_redux eval` of it, if any."""
    kind, preset = config["kind"], config.get("preset", "custom")
    tokenizer = config["tokenizer"]
    extra = config.get("extra") or {}
    trained_on = extra.get("trained_on") or {}
    size = tokenizer["image_size"]
    title = KIND_TITLES.get(kind, kind)
    data = NOT_RECORDED
    if trained_on:
        games = trained_on.get("games") or []
        shown = ", ".join(games[:8]) + (f" and {len(games) - 8} more" if len(games) > 8 else "")
        data = (
            f"`{trained_on.get('store_dpath', '?')}`: {trained_on.get('train_episodes', '?')} training episodes, "
            f"{trained_on.get('train_frames', '?')} frames of {len(games)} games ({shown})"
        )
    lines = [
        "---",
        "library_name: genie-redux",
        "tags:",
        "- world-model",
        "- genie",
        f"- {kind.replace('_', '-')}",
        "---",
        "",
        f"# {title}: {preset} preset, {size} px",
        "",
        "| | |",
        "|---|---|",
        f"| kind | `{kind}` |",
        f"| preset | `{preset}` |",
        f"| frame size | {size} x {size} px, patch {tokenizer['patch_size']}, {tokenizer['num_frames']}-frame windows |",
        f"| parameters | {num_parameters / 1e6:.2f} M |",
        f"| actions | {_actions_line(config)} |",
        f"| trained on | {data} |",
        f"| steps | {extra.get('step', NOT_RECORDED)} |",
        f"| made by | `{extra['command']}` |" if extra.get("command") else f"| made by | {NOT_RECORDED} |",
    ]
    validation = extra.get("last_validation") or {}
    lines += [
        "",
        f"## Last validation (step {validation.get('step', '?')})" if validation else "## Last validation",
    ]
    lines += (
        ["", "| metric | value |", "|---|---|", *_metric_rows(validation)]
        if validation
        else ["", NOT_RECORDED]
    )
    if evaluation:
        lines += ["", "## Last evaluation (`genie_redux eval`)", ""]
        lines += [
            f"{key}: `{evaluation[key]}`" for key in ("command", "dataset", "split") if key in evaluation
        ]
        lines += ["", "| metric | value |", "|---|---|", *_metric_rows(evaluation.get("metrics", {}))]
    lines += ["", "## Use it", ""]
    if kind == "tokenizer":
        lines += [
            "Train a world model on it: `python run.py genie_redux train config=... tokenizer_dpath=<this folder>`.",
            "",
        ]
    else:
        lines += [
            "```python",
            "from models.world_model import WorldModel",
            "",
            'world_model = WorldModel.from_pretrained("<this folder, or the hub repo id it was uploaded to>")',
            "```",
            "",
            "or play it: `python run.py play model_dpath=<this folder> dataset_dpath=<a store of its games>`.",
            "",
        ]
    return "\n".join(lines)
