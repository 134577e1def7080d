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


def table_rows(result: EvalResult) -> list[tuple[str, list[list[str]]]]:
    """The report's tables as (header, rows) of strings: headline, per game, per generated frame.

    Every PSNR/SSIM figure has the copy-last-prime-frame baseline beside it, so a reader sees at once
    whether the model beats copying.
    """
    t = result.settings.get("delta_psnr_frame", "t")
    metrics = result.metrics
    headline = [
        ["PSNR (dB)", _cell(metrics.get("psnr")), _cell(metrics.get("psnr_copy_last"))],
        ["SSIM", _cell(metrics.get("ssim")), _cell(metrics.get("ssim_copy_last"))],
        ["FID", _cell(metrics.get("fid")), "–"],
        [
            METRIC_LABELS["delta_psnr_genie"].replace("@t", f"@{t}"),
            _cell(metrics.get("delta_psnr_genie")),
            "–",
        ],
        [
            METRIC_LABELS["delta_psnr_upstream"].replace("@t", f"@{t}"),
            _cell(metrics.get("delta_psnr_upstream")),
            "–",
        ],
    ]
    games = [
        [
            name,
            str(game["num_sequences"]),
            _cell(game["psnr"]),
            _cell(game.get("psnr_copy")),
            _cell(game["ssim"]),
            _cell(game.get("ssim_copy")),
        ]
        for name, game in sorted(result.per_game.items())
    ]
    per_frame = [
        ["PSNR (dB)", *(_cell(v, 2) for v in result.psnr_per_frame)],
        ["PSNR, copy last prime frame", *(_cell(v, 2) for v in result.psnr_per_frame_copy)],
        ["SSIM", *(_cell(v, 3) for v in result.ssim_per_frame)],
        ["SSIM, copy last prime frame", *(_cell(v, 3) for v in result.ssim_per_frame_copy)],
    ]
    frame_header = ["generated frame", *(str(i + 1) for i in range(len(result.psnr_per_frame)))]
    return [
        ("metric|model|copy last prime frame", headline),
        ("game|sequences|PSNR (dB)|PSNR, copy|SSIM|SSIM, copy", games),
        ("|".join(frame_header), [row for row in per_frame if len(row) == len(frame_header)]),
        *play_rows(result.play),
    ]


def play_rows(play: dict) -> list[tuple[str, list[list[str]]]]:
    """The play checks' tables (training/evaluation/play_checks.py), those that ran."""
    tables = []
    response = play.get("action_response")
    if response:
        tables.append((
            "keys vs sampling|action MSE|seed MSE|ratio|starts|frames",
            [["rollouts under each held action vs two seeds", _cell(response["action_mse"], 5),
              _cell(response["seed_mse"], 5), _cell(response["ratio"], 2), str(response["num_starts"]),
              str(response["frames"])]],
        ))  # fmt: skip
    drift = play.get("drift")
    if drift:
        marks = next(iter(drift.values()))["frames"]
        rows = []
        for game, figures in sorted(drift.items()):
            rows.append(
                [f"{game}: PSNR to nearest real frame", *(_cell(v, 2) for v in figures["nearest_real_psnr"])]
            )
            rows.append([f"{game}: unseen code share", *(_cell(v, 3) for v in figures["unseen_code_share"])])
        tables.append(("|".join(["random-key play, frame", *(str(m) for m in marks)]), rows))
    return tables


def markdown_tables(result: EvalResult) -> str:
    """The tables of `table_rows` as markdown, with the notes."""
    lines = [f"### Evaluation ({result.mode}, {result.num_sequences} sequences)"]
    for header, rows in table_rows(result):
        columns = header.split("|")
        lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    if result.notes:
        lines += ["", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def html_tables(result: EvalResult) -> str:
    parts = []
    for header, rows in table_rows(result):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in header.split("|"))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if result.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    return "\n".join(parts)


def plot_psnr_curve(result: EvalResult, fpath: Path) -> Path:
    """PNG of mean PSNR against the generated-frame index (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=120)
    steps = list(range(1, len(result.psnr_per_frame) + 1))
    axis.plot(steps, result.psnr_per_frame, marker="o", label="model")
    if len(result.psnr_per_frame_copy) == len(steps):
        axis.plot(
            steps, result.psnr_per_frame_copy, marker=".", linestyle="--", label="copy last prime frame"
        )
        axis.legend()
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


def write_gifs(result: EvalResult, gifs_dpath: Path, fps: float) -> list[tuple[Path, int]]:
    """One gif per clip -> (path, pixel width) each; gifs of an earlier run in the folder are removed."""
    for stale in gifs_dpath.glob("*.gif"):
        stale.unlink()
    written = []
    for index, clip in enumerate(result.clips):
        frames = side_by_side(clip.columns)  # [T, H', W', 3]
        fpath = save_gif(gifs_dpath / f"{index:03d}_{_safe_name(clip.title)}.gif", frames, fps)
        written.append((fpath, frames.shape[2]))
    return written


GIF_DISPLAY_SCALE = 2  # gifs are shown at twice their pixel size, nearest-neighbour (crisp pixels)


def _html_report(result: EvalResult, plot_name: str, gifs: list[tuple[str, int]]) -> str:
    """gifs: (relative path, pixel width) of each gif."""
    figures = "\n".join(
        f'<figure><img src="{html.escape(name)}" width="{GIF_DISPLAY_SCALE * width}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, width in gifs
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>GenieRedux evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto}figure{display:inline-block;margin:6px}"
        "img{image-rendering:pixelated;image-rendering:crisp-edges}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}</style></head><body>"
        f"<h1>GenieRedux evaluation: {html.escape(result.mode)}, {result.num_sequences} sequences</h1>"
        f"<p><a href='results.json'>results.json</a> · <a href='results.md'>results.md</a></p>"
        f"{html_tables(result)}<h2>PSNR over the horizon</h2><img src='{plot_name}'>"
        f"<h2>Rollouts</h2>{figures}</body></html>\n"
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
    gifs = [
        (str(fpath.relative_to(output_dpath)), width)
        for fpath, width in write_gifs(result, paths["gifs"], gif_fps)
    ]
    atomic_write_text(paths["html"], _html_report(result, paths["plot"].name, gifs))
    return paths
