"""The output folder: results.json, results.md, the PSNR plot, gifs and report.html carry the computed numbers."""

from __future__ import annotations

import json

import numpy as np

from training.evaluation.report import markdown_tables, write_reports
from training.evaluation.result import Clip, EvalResult


def make_result() -> EvalResult:
    rng = np.random.default_rng(0)
    clip = {
        name: rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8) for name in ("prediction", "ground truth")
    }
    return EvalResult(
        mode="replication",
        metrics={
            "psnr": 23.4567,
            "ssim": 0.7123,
            "fid": None,
            "delta_psnr_genie": 1.2345,
            "delta_psnr_upstream": 0.4321,
        },
        psnr_per_frame=[25.0, 23.5, 21.87],
        ssim_per_frame=[0.8, 0.7, 0.6],
        per_game={"Pong-Atari2600": {"psnr": 24.111, "ssim": 0.75, "num_sequences": 3}},
        num_sequences=3,
        settings={"delta_psnr_frame": 4, "inference_method": "one_go"},
        notes=["FID skipped (reported as null): no weights"],
        clips=[Clip(title="Pong-Atari2600/seq 0", columns=clip)],
    )


def test_reports_contain_the_numbers(tmp_path) -> None:
    result = make_result()
    paths = write_reports(result, tmp_path / "eval")
    saved = json.loads(paths["json"].read_text())
    assert saved["metrics"] == result.metrics and saved["metrics"]["fid"] is None
    assert saved["per_game"]["Pong-Atari2600"]["num_sequences"] == 3
    assert saved["psnr_per_frame"] == [25.0, 23.5, 21.87]
    table = paths["markdown"].read_text()
    for text in (
        "23.457",
        "0.712",
        "| FID | n/a |",
        "ΔPSNR@4, Genie",
        "1.234",
        "0.432",
        "Pong-Atari2600",
        "21.87",
    ):
        assert text in table
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (gif,) = sorted(paths["gifs"].glob("*.gif"))
    assert gif.name == "000_Pong-Atari2600_seq_0.gif" and gif.read_bytes()[:6] == b"GIF89a"
    report = paths["html"].read_text()
    assert (
        "23.457" in report
        and "psnr_per_frame.png" in report
        and "gifs/000_Pong-Atari2600_seq_0.gif" in report
    )


def test_gif_frames_show_prediction_beside_ground_truth(tmp_path) -> None:
    import imageio.v3 as iio

    result = make_result()
    (gif,) = write_reports(result, tmp_path)["gifs"].glob("*.gif")
    frames = iio.imread(gif)  # [T, H', W', 3]: two upscaled 16-px columns under a label strip
    assert frames.shape[0] == 5
    assert frames.shape[2] > 2 * frames.shape[1] - 40  # two columns side by side (each 128 px wide)


def test_rewriting_a_folder_drops_stale_gifs_and_nan_becomes_null(tmp_path) -> None:
    result = make_result()
    write_reports(result, tmp_path)
    result.clips[0].title = "renamed"
    result.metrics["psnr"] = float("nan")
    paths = write_reports(result, tmp_path)
    assert [p.name for p in paths["gifs"].glob("*.gif")] == ["000_renamed.gif"]
    assert json.loads(paths["json"].read_text())["metrics"]["psnr"] is None
    assert "| PSNR (dB) | n/a |" in markdown_tables(result)


def test_every_psnr_and_ssim_has_the_copy_baseline_beside_it_and_html_renders_tables(tmp_path) -> None:
    result = make_result()
    result.metrics.update(psnr_copy_last=19.0, ssim_copy_last=0.5)
    result.per_game["Pong-Atari2600"].update(psnr_copy=18.5, ssim_copy=0.45)
    result.psnr_per_frame_copy, result.ssim_per_frame_copy = [20.0, 19.0, 18.0], [0.6, 0.5, 0.4]
    paths = write_reports(result, tmp_path)
    table = paths["markdown"].read_text()
    assert "| PSNR (dB) | 23.457 | 19.000 |" in table and "| SSIM | 0.712 | 0.500 |" in table
    assert "| Pong-Atari2600 | 3 | 24.111 | 18.500 | 0.750 | 0.450 |" in table
    assert "| PSNR, copy last prime frame | 20.00 | 19.00 | 18.00 |" in table
    saved = json.loads(paths["json"].read_text())
    assert saved["metrics"]["psnr_copy_last"] == 19.0 and saved["psnr_per_frame_copy"] == [20.0, 19.0, 18.0]
    report = paths["html"].read_text()
    assert (
        "<pre>" not in report and "<td>19.000</td>" in report and "<th>copy last prime frame</th>" in report
    )
    assert "image-rendering:pixelated" in report
    import imageio.v3 as iio

    (gif,) = paths["gifs"].glob("*.gif")
    assert f'width="{2 * iio.imread(gif).shape[2]}"' in report  # shown at twice its size, crisp
