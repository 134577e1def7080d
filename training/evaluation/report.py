"""Write an evaluation's outputs into one folder: results.json, results.md, gifs, a PSNR plot, report.html."""

from __future__ import annotations

import html
import re
from pathlib import Path

from common.atomic import atomic_path, atomic_write_json, atomic_write_text
from training.evaluation.gifs import save_gif, side_by_side
from training.evaluation.result import METRIC_LABELS, EvalResult


def _cell(value: float | int | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_tables(result: EvalResult) -> str:
    """The headline metrics and the per-game breakdown as markdown tables."""
    t = result.settings.get("delta_psnr_frame", "t")
    lines = [
        f"### Evaluation ({result.mode}, {result.num_sequences} sequences)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, label in METRIC_LABELS.items():
        lines.append(f"| {label.replace('@t', f'@{t}')} | {_cell(result.metrics.get(key))} |")
    lines += ["", "| game | sequences | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for env_name, game in sorted(result.per_game.items()):
        lines.append(
            f"| {env_name} | {game['num_sequences']} | {_cell(game['psnr'])} | {_cell(game['ssim'])} |"
        )
    lines += [
        "",
        "| generated frame | " + " | ".join(str(i + 1) for i in range(len(result.psnr_per_frame))) + " |",
    ]
    lines.append("|---|" + "---|" * len(result.psnr_per_frame))
    lines.append("| PSNR (dB) | " + " | ".join(_cell(v, 2) for v in result.psnr_per_frame) + " |")
    lines.append("| SSIM | " + " | ".join(_cell(v, 3) for v in result.ssim_per_frame) + " |")
    if result.notes:
        lines += ["", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def plot_psnr_curve(result: EvalResult, fpath: Path) -> Path:
    """PNG of mean PSNR against the generated-frame index (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=120)
    steps = list(range(1, len(result.psnr_per_frame) + 1))
    axis.plot(steps, result.psnr_per_frame, marker="o")
    axis.set_xlabel("generated frame")
    axis.set_ylabel("PSNR (dB)")
    axis.set_title(f"PSNR over the horizon ({result.settings.get('inference_method', '')})")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(fpath) as tmp_fpath:
        figure.savefig(tmp_fpath, format="png")
    plt.close(figure)
    return fpath


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


def write_gifs(result: EvalResult, gifs_dpath: Path, fps: float) -> list[Path]:
    """One gif per clip; gifs of an earlier run in the same folder are removed so the report matches."""
    for stale in gifs_dpath.glob("*.gif"):
        stale.unlink()
    return [
        save_gif(gifs_dpath / f"{index:03d}_{_safe_name(clip.title)}.gif", side_by_side(clip.columns), fps)
        for index, clip in enumerate(result.clips)
    ]


def _html_report(result: EvalResult, tables_md: str, plot_name: str, gif_names: list[str]) -> str:
    escaped = html.escape(tables_md)
    gifs = "\n".join(
        f'<figure><img src="{html.escape(n)}"><figcaption>{html.escape(n)}</figcaption></figure>'
        for n in gif_names
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>GenieRedux evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}figure{display:inline-block;margin:6px}"
        "pre{background:#f5f5f5;padding:1em;overflow-x:auto}</style></head><body>"
        f"<h1>GenieRedux evaluation: {html.escape(result.mode)}</h1>"
        f"<p><a href='results.json'>results.json</a> · <a href='results.md'>results.md</a></p>"
        f"<pre>{escaped}</pre><h2>PSNR over the horizon</h2><img src='{plot_name}'>"
        f"<h2>Rollouts</h2>{gifs}</body></html>\n"
    )


def write_reports(result: EvalResult, output_dpath: str | Path, gif_fps: float = 4.0) -> dict[str, Path]:
    """Write every output file; returns their paths by kind (json, markdown, plot, html, gifs dir)."""
    output_dpath = Path(output_dpath)
    output_dpath.mkdir(parents=True, exist_ok=True)
    tables_md = markdown_tables(result)
    paths = {
        "json": output_dpath / "results.json",
        "markdown": output_dpath / "results.md",
        "plot": output_dpath / "psnr_per_frame.png",
        "html": output_dpath / "report.html",
        "gifs": output_dpath / "gifs",
    }
    atomic_write_json(paths["json"], result.to_json())
    atomic_write_text(paths["markdown"], tables_md)
    plot_psnr_curve(result, paths["plot"])
    gif_fpaths = write_gifs(result, paths["gifs"], gif_fps)
    gif_names = [str(fpath.relative_to(output_dpath)) for fpath in gif_fpaths]
    atomic_write_text(paths["html"], _html_report(result, tables_md, paths["plot"].name, gif_names))
    return paths
