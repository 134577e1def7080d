"""`upstream_dpath=` of bench model_step / generation_speed: option checks, the preset -> upstream
constructor mapping, and the child-process harness run against a tiny fake upstream checkout (same entry
points as upstream GenieRedux's models/, written into tmp_path), so the protocol, the interleaving of ours
and upstream's measurements and the ratios in the rows are tested without the real upstream."""

from __future__ import annotations

import json
import statistics
import textwrap
from pathlib import Path

import pytest

from benchmarks import bench_generation_speed, bench_model_step, results_md, upstream
from common.errors import UserError

REPO_DPATH = Path(__file__).resolve().parents[1]
FAKE_FORWARD_SLEEP_S = 0.2  # the fake's training forward sleeps this long: upstream's step time >= it
FAKE_SAMPLE_SLEEP_S = 0.05  # per MaskGIT step of the fake's Dynamics.sample

FAKE_MODELS = """
import time
from pathlib import Path

import torch
from torch import nn

LOG = Path({log!r})


def log(event):
    with LOG.open("a") as f:
        f.write(event + "\\n")


class Tokenizer(nn.Module):
    def __init__(self, *, dim, codebook_size, image_size, patch_size, temporal_patch_size, num_blocks,
                 codebook_dim, dim_head, heads, ff_mult):
        super().__init__()
        self.image_size = (image_size, image_size)
        self.patch_size = (patch_size, patch_size)
        self.grid = image_size // patch_size
        self.codebook_size = codebook_size
        self.proj = nn.Linear(3, dim)
        self.out = nn.Linear(dim, 3)
        self.vq = nn.Module()  # upstream's quantizer: its codebook feeds the Dynamics' distance-weighted loss
        self.vq.codebook = torch.randn(codebook_size, codebook_dim)
        log(f"Tokenizer dim={{dim}} num_blocks={{num_blocks}} heads={{heads}}")

    def forward(self, videos, return_only_codebook_ids=False):
        b, c, t, h, w = videos.shape
        if return_only_codebook_ids:
            return torch.randint(0, self.codebook_size, (b, t, self.grid, self.grid))
        log("tokenizer forward")
        time.sleep({forward_sleep})
        return ((self.out(self.proj(videos.transpose(1, -1))) - videos.transpose(1, -1)) ** 2).mean()

    def decode_from_codebook_indices(self, ids):
        b = ids.shape[0]
        t = ids.shape[1] // (self.grid * self.grid)
        return torch.zeros(b, 3, t, *self.image_size)


class MaskGIT(nn.Module):
    def __init__(self, *, dim, is_guided, action_dim, num_tokens, heads, dim_head, num_blocks, max_seq_len,
                 image_size, patch_size, use_token, ff_mult):
        super().__init__()
        self.num_tokens = num_tokens
        self.net = nn.Linear(dim + action_dim, num_tokens)
        log(f"MaskGIT dim={{dim}} num_blocks={{num_blocks}} max_seq_len={{max_seq_len}}")


class Dynamics(nn.Module):
    def __init__(self, *, maskgit, inference_steps, sample_temperature, mask_schedule, tokenizer_codebook=None,
                 use_distance_weighted_loss=False):
        super().__init__()
        self.maskgit = maskgit
        assert (tokenizer_codebook is not None) == use_distance_weighted_loss  # TDCE needs the codebook
        log(f"Dynamics tdce={{use_distance_weighted_loss}}")

    def sample(self, *, prime_token_ids, actions, num_tokens, patch_shape, inference_steps, mask_schedule,
               sample_temperature, tokenizer):
        log(f"sample steps={{inference_steps}}")
        time.sleep({sample_sleep} * inference_steps)
        return torch.randint(0, self.maskgit.num_tokens, (prime_token_ids.shape[0], num_tokens))


class GenieReduxGuided(nn.Module):
    def __init__(self, tokenizer, dynamics, use_action_embeddings=False):
        super().__init__()
        self.tokenizer = tokenizer.requires_grad_(False)
        self.dynamics = dynamics
        self.action_embeddings = nn.Embedding(16, 4)

    def forward(self, videos, actions):
        log("guided forward")
        time.sleep({forward_sleep})
        return self.dynamics.maskgit.net.weight.square().mean() + self.action_embeddings.weight.mean()

    def get_tokenizer_codebook_ids(self, videos):
        return self.tokenizer(videos, return_only_codebook_ids=True)

    def get_codes_from_indices(self, ids):
        return self.action_embeddings(ids)

    def num_tokens_per_frames(self, num_frames, num_first_frames):
        return num_frames * self.tokenizer.grid ** 2

    def get_video_patch_shape(self, num_frames, num_first_frames):
        return (num_frames, self.tokenizer.grid, self.tokenizer.grid)

    def decode_from_codebook_indices(self, ids):
        return self.tokenizer.decode_from_codebook_indices(ids)

    def sample(self, *, prime_frames, actions, num_frames, inference_steps, sample_temperature):
        log(f"one_go steps={{inference_steps}} frames={{num_frames}}")
        time.sleep({sample_sleep} * inference_steps)
        b, c, _, h, w = prime_frames.shape
        return torch.zeros(b, c, num_frames, h, w)
"""


def write_fake_upstream(root: Path, log_fpath: Path, extra_import: str = "") -> Path:
    models = root / "models"
    models.mkdir(parents=True)
    source = FAKE_MODELS.format(
        log=str(log_fpath), forward_sleep=FAKE_FORWARD_SLEEP_S, sample_sleep=FAKE_SAMPLE_SLEEP_S
    )
    (models / "genie_redux.py").write_text(extra_import + textwrap.dedent(source))
    (models / "tokenizer.py").write_text("from models.genie_redux import Tokenizer\n")
    (models / "dynamics.py").write_text("from models.genie_redux import Dynamics, MaskGIT\n")
    (models / "__init__.py").write_text(
        "from .genie_redux import Dynamics, GenieReduxGuided, MaskGIT, Tokenizer\n"
    )
    return root


@pytest.fixture
def fake_upstream(tmp_path: Path) -> tuple[Path, Path]:
    log_fpath = tmp_path / "fake_upstream.log"
    return write_fake_upstream(tmp_path / "upstream", log_fpath), log_fpath


@pytest.fixture
def results_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """publish() writes into tmp_path, never into benchmarks/RESULTS.md."""
    monkeypatch.setattr(results_md, "BENCH_DPATH", tmp_path)
    monkeypatch.setattr(results_md, "RESULTS_MD_FPATH", tmp_path / "RESULTS.md")
    return tmp_path


def test_upstream_dpath_must_be_an_upstream_checkout(tmp_path: Path) -> None:
    for parse in (bench_model_step.parse_options, bench_generation_speed.parse_options):
        with pytest.raises(UserError, match="is not a folder; git clone"):
            parse({"upstream_dpath": str(tmp_path / "missing")})
        with pytest.raises(UserError, match="upstream_dpath= is empty"):
            parse({"upstream_dpath": ""})
        with pytest.raises(UserError, match=r"not an upstream GenieRedux checkout \(no models/__init__.py\)"):
            parse({"upstream_dpath": str(tmp_path)})
        # our own repo has models/ too, but not upstream's models/genie_redux.py
        with pytest.raises(
            UserError, match=r"not an upstream GenieRedux checkout \(no models/genie_redux.py\)"
        ):
            parse({"upstream_dpath": str(REPO_DPATH)})
        assert parse({})["upstream_dpath"] is None
    with pytest.raises(UserError, match="models must be a comma list"):
        bench_model_step.parse_options({"models": "genie_redux"})
    with pytest.raises(UserError, match="repeats must be >= 1"):
        bench_model_step.parse_options({"repeats": "0"})


def test_preset_maps_onto_upstream_constructors() -> None:
    neurips = upstream.constructor_kwargs("neurips")
    assert neurips["tokenizer"] == {
        "dim": 512,
        "codebook_size": 1024,
        "image_size": 64,
        "patch_size": 4,
        "temporal_patch_size": 1,
        "num_blocks": 8,
        "codebook_dim": 32,
        "dim_head": 64,
        "heads": 8,
        "ff_mult": 4.0,
    }
    mg = neurips["maskgit"]
    assert (mg["dim"], mg["action_dim"], mg["num_blocks"], mg["heads"], mg["dim_head"]) == (
        512,
        512,
        12,
        8,
        64,
    )
    assert mg["max_seq_len"] == 16 * 16 * 16 and mg["use_token"] is False and neurips["tdce"] is False
    assert any("1024 wide" in m for m in neurips["mismatches"])
    cvpr = upstream.constructor_kwargs("cvpr")
    assert cvpr["maskgit"]["use_token"] is True and cvpr["tdce"] is True
    assert any("TDCE" in m for m in cvpr["mismatches"])
    assert upstream.constructor_kwargs("neurips", image_size=128)["maskgit"]["max_seq_len"] == 16 * 32 * 32


@pytest.mark.slow
def test_missing_upstream_dependency_is_one_line(tmp_path: Path) -> None:
    root = write_fake_upstream(tmp_path / "up", tmp_path / "log", extra_import="import no_such_pkg_xyz\n")
    with pytest.raises(UserError, match=r"imports 'no_such_pkg_xyz'.*pip install -e '\.\[upstream\]'"):
        upstream.UpstreamWorker(upstream.check_upstream_dpath(str(root)))


@pytest.mark.slow
def test_model_step_interleaves_and_rows_carry_upstream_figures(
    fake_upstream: tuple[Path, Path], results_in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, log_fpath = fake_upstream
    order, ours_out, theirs_out = [], [], []
    real_ours, real_theirs = bench_model_step.run_isolated, upstream.train_step

    def ours(*args):  # noqa: ANN002, ANN202
        order.append("ours")
        ours_out.append(real_ours(*args))
        return ours_out[-1]

    def theirs(*args):  # noqa: ANN002, ANN202
        order.append("upstream")
        theirs_out.append(real_theirs(*args))
        return theirs_out[-1]

    monkeypatch.setattr(bench_model_step, "run_isolated", ours)
    monkeypatch.setattr(upstream, "train_step", theirs)
    bench_model_step.main(
        presets="tiny",
        models="genie_redux_guided",
        steps="2",
        threads="1",
        checkpointing="off",
        precision="fp32",
        loss_check_steps="0",
        repeats="2",
        upstream_dpath=str(root),
    )
    assert order == ["ours", "upstream", "ours", "upstream"]
    # each upstream measurement was a fresh child that built the fake at tiny sizes and ran 2 steps
    events = log_fpath.read_text().splitlines()
    assert events.count("Tokenizer dim=64 num_blocks=2 heads=4") == 2
    assert events.count("MaskGIT dim=64 num_blocks=2 max_seq_len=256") == 2
    assert (
        events.count("Dynamics tdce=True") == 2
    )  # the tiny preset trains with TDCE: upstream's built with it
    assert events.count("guided forward") == 4
    result = json.loads((results_in_tmp / "results" / "model_step_tiny.json").read_text())
    (row,) = result["rows"]
    ours_s = statistics.median(s for s, _ in ours_out)
    ours_gb = statistics.median(g for _, g in ours_out)
    up_s = statistics.median(s for s, _ in theirs_out)
    up_gb = statistics.median(g for _, g in theirs_out)
    assert up_s >= FAKE_FORWARD_SLEEP_S  # the figure is the fake's own step, timed in its child
    assert (row["s_per_step"], row["peak_rss_gb"]) == (ours_s, ours_gb)
    assert (row["upstream_s_per_step"], row["upstream_peak_rss_gb"]) == (up_s, up_gb)
    assert row["speedup_vs_upstream"] == pytest.approx(up_s / ours_s)
    assert row["mem_frac_of_upstream"] == pytest.approx(ours_gb / up_gb)
    assert "upstream" not in row
    assert f"Upstream: {root.resolve()}" in result["notes"]
    assert "## model_step_tiny" in (results_in_tmp / "RESULTS.md").read_text()


@pytest.mark.slow
def test_model_step_without_upstream_says_not_measured(
    results_in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_model_step, "run_isolated", lambda *args: (0.5, 1.0))
    bench_model_step.main(
        presets="tiny", models="tokenizer", checkpointing="off", precision="fp32", loss_check_steps="0"
    )
    (row,) = json.loads((results_in_tmp / "results" / "model_step_tiny.json").read_text())["rows"]
    assert row["upstream"] == "upstream not measured" and "upstream_s_per_step" not in row
    # a tagged study writes its own block and leaves the standing one as it was
    standing = (results_in_tmp / "results" / "model_step_tiny.json").read_text()
    bench_model_step.main(presets="tiny", models="tokenizer", checkpointing="on", precision="fp32",
                          loss_check_steps="0", tag="ckpt")  # fmt: skip
    tagged = json.loads((results_in_tmp / "results" / "model_step_tiny_ckpt.json").read_text())
    assert [r["act_ckpt"] for r in tagged["rows"]] == [True]
    assert (results_in_tmp / "results" / "model_step_tiny.json").read_text() == standing


@pytest.mark.slow
def test_generation_speed_interleaves_and_rows_carry_upstream_figures(
    fake_upstream: tuple[Path, Path], results_in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, log_fpath = fake_upstream
    order = []
    cached_s: dict[int, list[float]] = {}
    upstream_s: dict[int, list[float]] = {}
    real_timed_step = bench_generation_speed.timed_step
    real_call = bench_generation_speed.UpstreamGeneration.__call__

    def timed_step(wm, frames, actions, steps, repeats, first_seed=0):  # noqa: ANN001, ANN202
        seconds = real_timed_step(wm, frames, actions, steps, repeats, first_seed)
        if wm.use_cache:
            order.append(("ours", steps))
            cached_s.setdefault(steps, []).append(seconds)
        return seconds

    def call(self, batch, context, steps, seed):  # noqa: ANN001, ANN202
        order.append(("upstream", steps))
        upstream_s.setdefault(steps, []).append(real_call(self, batch, context, steps, seed))
        return upstream_s[steps][-1]

    monkeypatch.setattr(bench_generation_speed, "timed_step", timed_step)
    monkeypatch.setattr(bench_generation_speed.UpstreamGeneration, "__call__", call)
    bench_generation_speed.main(
        preset="tiny",
        batches="1",
        steps="1,4",
        uncached_steps="1",
        one_go_steps="4",
        repeats="2",
        threads="1",
        upstream_dpath=str(root),
    )
    assert order == [("ours", 1), ("upstream", 1)] * 2 + [("ours", 4), ("upstream", 4)] * 2
    events = log_fpath.read_text().splitlines()
    assert events.count("sample steps=1") == 2 and events.count("sample steps=4") == 2
    # one_go: upstream's sampler ran the papers' evaluation mode (10 frames) at the one_go steps only
    assert events.count("one_go steps=4 frames=10") == 2 and not any("one_go steps=1" in e for e in events)
    result = json.loads((results_in_tmp / "results" / "generation_speed.json").read_text())
    assert [r["maskgit_steps"] for r in result["rows"]] == [1, 4]
    for row in result["rows"]:
        steps = row["maskgit_steps"]
        up = statistics.median(upstream_s[steps])
        assert up >= FAKE_SAMPLE_SLEEP_S * steps
        assert row["cached_s_per_frame"] == statistics.median(cached_s[steps])
        assert row["upstream_s_per_frame"] == up
        assert row["cached_vs_upstream"] == pytest.approx(up / row["cached_s_per_frame"])
        assert "upstream" not in row
        assert ("one_go_vs_upstream" in row) == (steps == 4)
    one_go = result["rows"][1]
    assert one_go["upstream_one_go_s_per_frame"] >= FAKE_SAMPLE_SLEEP_S * 4 / 10
    assert one_go["one_go_vs_upstream"] == pytest.approx(
        one_go["upstream_one_go_s_per_frame"] / one_go["one_go_s_per_frame"]
    )
    assert f"Upstream: {root.resolve()}" in result["notes"]


def test_neurips_branch_layout_maps_onto_its_constructors(tmp_path: Path) -> None:
    """The NeurIPS branch (e.g. ca7351c) spells MaskGit, one-hot encodes actions into `action_dim` classes
    and has neither token input skip nor TDCE: the adapter must not pass what its constructors lack."""
    cvpr_root = write_fake_upstream(tmp_path / "cvpr", tmp_path / "log")
    assert upstream.upstream_layout(cvpr_root) == "cvpr"
    neurips_root = write_fake_upstream(tmp_path / "neurips", tmp_path / "log")
    source = (neurips_root / "models" / "genie_redux.py").read_text()
    (neurips_root / "models" / "genie_redux.py").write_text(
        source.replace("class MaskGIT(", "class MaskGit(")
    )
    assert upstream.upstream_layout(neurips_root) == "neurips"
    kw = upstream.constructor_kwargs("neurips", layout="neurips")
    assert kw["maskgit"]["action_dim"] == 8 and "use_token" not in kw["maskgit"] and kw["layout"] == "neurips"
    assert any("520 wide" in m for m in kw["mismatches"])
    cvpr_on_neurips = upstream.constructor_kwargs("cvpr", layout="neurips")
    assert cvpr_on_neurips["tdce"] is False and any(
        "TDCE off upstream" in m for m in cvpr_on_neurips["mismatches"]
    )
    (neurips_root / "models" / "genie_redux.py").write_text(source.replace("class MaskGIT(", "class Other("))
    with pytest.raises(UserError, match="neither MaskGIT nor MaskGit"):
        upstream.upstream_layout(neurips_root)


@pytest.mark.slow
def test_upstream_helpers_may_lack_modules_the_models_never_call(tmp_path: Path) -> None:
    """Upstream's models import its utils, which import its data code, which imports cv2 and torchvision:
    a module absent here that only upstream's helpers import is stood in (the worker still loads and says
    which); the stand-in raises once called after the import."""
    root = write_fake_upstream(tmp_path / "up", tmp_path / "log", extra_import="import utils.helpers\n")
    (root / "utils").mkdir()
    (root / "utils" / "__init__.py").write_text("")
    (root / "utils" / "helpers.py").write_text(
        "import no_such_pkg_xyz\nfrom no_such_pkg_xyz.transforms import ToTensor\nTRANSFORM = ToTensor()\n"
    )
    with upstream.UpstreamWorker(upstream.check_upstream_dpath(str(root))) as worker:
        assert worker.stood_in == ["no_such_pkg_xyz"]
        assert worker.request("build_guided", **_guided_request())["parameters"] > 0

    from benchmarks.upstream_worker import StandIn

    with pytest.raises(RuntimeError, match="upstream called no_such_pkg_xyz.imread, which is not installed"):
        StandIn("no_such_pkg_xyz").imread("frame.png")


def _guided_request() -> dict:
    kw = upstream.constructor_kwargs("tiny")
    return {"layout": kw["layout"], "tokenizer": kw["tokenizer"], "maskgit": kw["maskgit"], "tdce": kw["tdce"],
            "threads": 1}  # fmt: skip


@pytest.mark.slow
def test_profile_step_profiles_both_sides_the_same_way(
    fake_upstream: tuple[Path, Path], results_in_tmp: Path
) -> None:
    from benchmarks import bench_profile_step

    root, _ = fake_upstream
    assert bench_profile_step.main(preset="tiny", models="genie_redux_guided", upstream_dpath=str(root)) == 0
    record = json.loads((results_in_tmp / "results" / "profile_step_tiny.json").read_text())
    ours, theirs = record["rows"]
    assert (ours["side"], theirs["side"]) == ("ours", "upstream")
    assert theirs["s_per_step"] >= FAKE_FORWARD_SLEEP_S  # the fake's forward sleeps: its own step was timed
    assert ours["gflop_per_step"] > 0.1 and ours["gflop_per_s"] == pytest.approx(
        ours["gflop_per_step"] / ours["s_per_step"]
    )
    for row in (ours, theirs):
        shares = [v for k, v in row.items() if k.endswith(" %")]
        assert sum(shares) == pytest.approx(100.0)
    assert ours["matmul %"] > 10 and ours["backward_s"] > 0
    assert "Largest ops: ours genie_redux_guided: " in record["notes"]


def test_profile_step_sorts_ops_into_families() -> None:
    from benchmarks.bench_profile_step import family

    cases = {
        "aten::addmm": "matmul",
        "aten::bmm": "matmul",
        "aten::_scaled_dot_product_flash_attention_for_cpu": "attention",
        "aten::_softmax_backward_data": "attention",
        "aten::convolution_backward": "convolution",
        "Optimizer.step#AdamW.step": "optimizer",
        "aten::_foreach_addcmul_": "optimizer",
        "aten::native_layer_norm_backward": "norm",
        "aten::gelu_backward": "activation",
        "aten::copy_": "data movement",
        "aten::mul": "elementwise",
        "aten::view": "views",
        "aten::argmax": "other",
    }
    assert {name: family(name) for name in cases} == cases
