"""Measure upstream GenieRedux beside ours: `upstream_dpath=` of bench model_step / generation_speed.

The checkout is the user's (e.g. `git clone https://github.com/insait-institute/GenieRedux`); nothing of
it is copied into this repo. Upstream's top-level packages (`models`, `training`, `data`, `tools`) share
names with ours, so it never loads in our process: `UpstreamWorker` starts `upstream_worker.py` as a
child (`python -I`, upstream first on sys.path) and talks JSON lines with it. The benchmarks alternate
our measurement and upstream's in the same process tree and report medians.

Adapter (our preset -> upstream's constructors, as its `models/construct_model.py` calls them):
  tokenizer          -> models.Tokenizer(dim, codebook_size, image_size, patch_size, temporal_patch_size=1,
                        num_blocks, codebook_dim, dim_head, heads, ff_mult)
  genie_redux_guided -> models.GenieReduxGuided(Tokenizer(...), Dynamics(maskgit=MaskGIT(dim, is_guided=True,
                        action_dim=dim, num_tokens, heads, dim_head, num_blocks, max_seq_len, image_size,
                        patch_size, use_token), ...), use_action_embeddings=True)  (upstream's seed configs)
Upstream dependencies beyond ours: `pip install -e '.[upstream]'` (einops, beartype).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common.errors import UserError

WORKER_FPATH = Path(__file__).resolve().parent / "upstream_worker.py"
# upstream's layout; our repo has models/genie.py, not models/genie_redux.py, so it is not mistaken for one
UPSTREAM_FILES = ("models/__init__.py", "models/tokenizer.py", "models/dynamics.py", "models/genie_redux.py")
CLONE_HINT = "git clone https://github.com/insait-institute/GenieRedux and pass its folder"
NOT_MEASURED = "upstream not measured"


def check_upstream_dpath(value: str) -> Path:
    """The folder of an upstream GenieRedux checkout, or a one-line UserError naming the fix."""
    if not value.strip():
        raise UserError(f"upstream_dpath= is empty; {CLONE_HINT}, e.g. upstream_dpath=~/GenieRedux")
    dpath = Path(value).expanduser()
    if not dpath.is_dir():
        raise UserError(f"upstream_dpath={value} is not a folder; {CLONE_HINT}")
    missing = [name for name in UPSTREAM_FILES if not (dpath / name).is_file()]
    if missing:
        raise UserError(
            f"upstream_dpath={value} is not an upstream GenieRedux checkout (no {missing[0]}); {CLONE_HINT}"
        )
    return dpath.resolve()


def upstream_revision(dpath: Path) -> str:
    """Short commit of the checkout, for the notes (a checkout without .git says so)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(dpath), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return "unknown commit"
    return f"commit {out.stdout.strip()}" if out.returncode == 0 else "unknown commit (no git metadata)"


def upstream_layout(dpath: Path) -> str:
    """Which upstream the checkout is, read from its models/ sources: "cvpr" (master: `MaskGIT` with
    TDCE, token input skip and action embeddings) or "neurips" (the NeurIPS branch, e.g. commit ca7351c:
    `MaskGit`, the one-hot action concatenated to every token, neither TDCE nor token input skip)."""
    text = "".join(
        f.read_text(encoding="utf-8", errors="replace") for f in sorted((dpath / "models").rglob("*.py"))
    )
    if "class MaskGIT(" in text:
        return "cvpr"
    if "class MaskGit(" in text:
        return "neurips"
    raise UserError(f"{dpath}/models/ defines neither MaskGIT nor MaskGit; {CLONE_HINT}")


def constructor_kwargs(preset: str, image_size: int | None = None, layout: str = "cvpr") -> dict[str, Any]:
    """Our `preset` (guided world model) -> upstream constructor keywords for a checkout of `layout`
    (`upstream_layout`), plus the sizes it cannot match."""
    from models.presets import part_configs

    cfg = part_configs(preset, "genie_redux_guided", {"image_size": image_size} if image_size else {})
    tok, dyn = cfg["tokenizer"], cfg["dynamics"]
    h, w = tok.grid
    tokenizer = {
        "dim": tok.dim,
        "codebook_size": tok.codebook_size,
        "image_size": tok.image_size,
        "patch_size": tok.patch_size,
        "temporal_patch_size": 1,
        "num_blocks": tok.num_encoder_blocks,
        "codebook_dim": tok.code_dim,
        "dim_head": tok.dim // tok.num_heads,
        "heads": tok.num_heads,
        "ff_mult": tok.mlp_ratio,
    }
    maskgit = {
        "dim": dyn.dim,
        "is_guided": True,
        "action_dim": dyn.dim,  # use_action_embeddings=True: actions embedded to `dim`, then concatenated
        "num_tokens": tok.codebook_size,
        "heads": dyn.num_heads,
        "dim_head": dyn.dim // dyn.num_heads,
        "num_blocks": dyn.num_blocks,
        "max_seq_len": dyn.num_frames * h * w,
        "image_size": tok.image_size,
        "patch_size": tok.patch_size,
        "use_token": dyn.token_input_skip,
        "ff_mult": dyn.mlp_ratio,  # MaskGIT passes extra keywords on to its STTransformer
    }
    if layout == "neurips":
        # its GenieReduxGuided one-hot encodes the action into `action_dim` classes and concatenates it
        maskgit["action_dim"] = dyn.num_actions
        del maskgit["use_token"]
        action_note = (
            f"upstream's (NeurIPS branch) MaskGit concatenates the {dyn.num_actions}-wide one-hot action to every "
            f"token, so its transformer is {dyn.dim + dyn.num_actions} wide where ours is {dyn.dim} "
            f"({dyn.action_conditioning} action conditioning); modules its data code imports and the models never "
            "call (cv2, torchvision, ...) are stood in at import when absent (benchmarks/upstream_worker.py)"
        )
    else:
        action_note = (
            f"upstream's guided MaskGIT concatenates a {dyn.dim}-wide action embedding to every token "
            f"(use_action_embeddings, as its seed configs), so its transformer is {2 * dyn.dim} wide where "
            f"ours is {dyn.dim} ({dyn.action_conditioning} action conditioning)"
        )
    mismatches = [
        action_note,
        f"ours trains a clean-context stream on round(B x {dyn.clean_context_fraction:.0%}) samples of each "
        "batch beside the masked one (none at batch 1); upstream trains the masked stream only",
    ]
    if tok.num_encoder_blocks != tok.num_decoder_blocks:
        mismatches.append(
            f"upstream's tokenizer has one num_blocks for encoder and decoder: {tok.num_encoder_blocks} "
            f"(ours: {tok.num_encoder_blocks} encoder, {tok.num_decoder_blocks} decoder blocks)"
        )
    tdce = dyn.tdce and layout == "cvpr"
    if dyn.tdce and not tdce:
        mismatches.append(
            "TDCE off upstream: this checkout has none (ours trains with it, as the preset says)"
        )
    elif tdce:
        mismatches.append(
            "TDCE on as in the preset (upstream's Dynamics(use_distance_weighted_loss=True), lambda 3), "
            "although upstream's construct_model never turns it on"
        )
    return {
        "layout": layout,
        "tokenizer": tokenizer,
        "maskgit": maskgit,
        "tdce": tdce,
        "num_actions": dyn.num_actions,
        "mismatches": mismatches,
    }


def adapter_notes(preset: str, dpath: Path, image_size: int | None = None) -> str:
    layout = upstream_layout(dpath)
    kw = constructor_kwargs(preset, image_size, layout)
    return (
        f"Upstream: {dpath} ({upstream_revision(dpath)}, {layout} layout), built by benchmarks/upstream_worker.py in a child "
        f"process at the `{preset}` sizes: Tokenizer({kw['tokenizer']}), MaskGIT({kw['maskgit']}). "
        "Differences upstream's constructors impose: " + "; ".join(kw["mismatches"]) + "."
    )


class UpstreamWorker:
    """One child process running upstream's models; `request(op, ...)` -> its reply dict."""

    def __init__(self, dpath: Path) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(WORKER_FPATH), str(dpath)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
        )
        hello = self._read("start")
        self.stood_in: list[str] = hello.get("stood_in", [])  # absent modules upstream's helpers import
        if "error" in hello:
            self.close()
            name = hello.get("missing_module")
            if name:
                raise UserError(
                    f"upstream GenieRedux imports '{name}', which is not installed here: "
                    f"pip install -e '.[upstream]' (or pip install {name})"
                )
            raise UserError(
                f"upstream_dpath={dpath} did not import as upstream GenieRedux ({hello['error']}); {CLONE_HINT}"
            )

    def _read(self, op: str) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.stderr.seek(0)
            lines = [x for x in self.stderr.read().splitlines() if x.strip()]
            raise UserError(
                f"upstream worker exited (code {code}) during {op}: {lines[-1] if lines else 'no output'}"
            )
        return json.loads(line)

    def request(self, op: str, **fields: Any) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        reply = self._read(op)
        if "error" in reply:
            raise UserError(
                f"upstream {op} failed: {reply['error']} (does this checkout's models/ match the constructors "
                "benchmarks/upstream_worker.py calls?)"
            )
        return reply

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()

    def __enter__(self) -> UpstreamWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def train_step(
    dpath: Path, preset: str, kind: str, steps: int, threads: int, precision: str, batch: int, frames: int
) -> tuple[float, float]:
    """Upstream's training step in a fresh child process -> (median s/step after the first, peak RSS GB)."""
    kw = constructor_kwargs(preset, layout=upstream_layout(dpath))
    with UpstreamWorker(dpath) as worker:
        reply = worker.request(
            "train_step",
            layout=kw["layout"],
            kind=kind,
            tokenizer=kw["tokenizer"],
            maskgit=kw["maskgit"],
            tdce=kw["tdce"],
            steps=steps,
            threads=threads,
            precision=precision,
            batch=batch,
            frames=frames,
            num_actions=kw["num_actions"],
        )
    return reply["s_per_step"], reply["peak_rss_gb"]


def ratio(numerator: float | None, denominator: float | None) -> float | str:
    if numerator is None or denominator is None:
        return NOT_MEASURED
    return numerator / denominator
