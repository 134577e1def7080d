"""`python run.py play [key=value ...]`: serve the browser player on 127.0.0.1 (keys: play/configs/play.yaml)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from omegaconf import DictConfig

from common.config import compose_config
from common.errors import UserError
from play.access import WILDCARD_HOSTS, is_loopback_host

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"
DEMO_HINT = "run the demo first (python run.py demo) or pass"
DEMO_MODEL_DPATH = Path("outputs/demo/genie_redux_guided/best_model")  # where `python run.py demo` puts them
DEMO_DATASET_DPATH = Path("outputs/demo/datasets/retro_act/pretrain")
# the model shipped in the repo (trained by the demo's own command, its card says which) and start frames
BUNDLED_DPATH = Path(__file__).resolve().parent / "pretrained" / "demo_32px"


def default_inputs(model_dpath: str | None, dataset_dpath: str | None) -> tuple[Path, Path, str]:
    """The model and store to play: those given, else the demo's once it ran, else the bundled ones
    (a model trained by the demo's command and its start frames); -> (model, store, what they are)."""
    if model_dpath is not None or dataset_dpath is not None:
        model = Path(model_dpath) if model_dpath is not None else DEMO_MODEL_DPATH
        return model, Path(dataset_dpath) if dataset_dpath is not None else DEMO_DATASET_DPATH, "as given"
    if DEMO_MODEL_DPATH.is_dir() and DEMO_DATASET_DPATH.is_dir():
        return DEMO_MODEL_DPATH, DEMO_DATASET_DPATH, "the demo's"
    return (
        BUNDLED_DPATH / "world_model",
        BUNDLED_DPATH / "start_frames",
        "the bundled model (run the demo to train your own)",
    )


def check_inputs(model_dpath: Path, dataset_dpath: Path) -> Path:
    """The world model's checkpoint folder (`model_dpath` may name a training run: its best_model/)."""
    from models.checkpoint import find_checkpoint

    try:
        model_dpath = find_checkpoint(model_dpath)
    except ValueError:
        raise UserError(
            f"no world model at {model_dpath}; {DEMO_HINT} model_dpath=<checkpoint folder>"
        ) from None
    if not (dataset_dpath / "shards").is_dir():
        raise UserError(f"no episode store at {dataset_dpath}; {DEMO_HINT} dataset_dpath=<episode store>")
    return model_dpath


def check_settings(cfg: DictConfig) -> None:
    """Every setting a session will use, checked before the model loads or a socket opens."""
    from envs.world_model_env import check_sampling_options

    if not 0 <= cfg.port <= 65535:
        raise UserError(f"port={cfg.port} is not a TCP port; use 1..65535, or 0 for a free one")
    try:
        check_sampling_options(cfg.maskgit_steps, cfg.temperature)
    except ValueError as error:
        raise UserError(f"{error} (the sliders' starting values maskgit_steps=, temperature=)") from None
    at_least_one = ("threads", "num_prime_frames", "max_sessions", "max_upload_bytes")
    for key in at_least_one:
        if cfg[key] < 1:
            raise UserError(f"{key}={cfg[key]} must be >= 1 (default: play/configs/play.yaml)")
    if not cfg.idle_timeout_s > 0:
        raise UserError(f"idle_timeout_s={cfg.idle_timeout_s} must be > 0 seconds (e.g. idle_timeout_s=300)")
    check_device(cfg.device)
    from models.world_model import PRECISIONS

    if cfg.precision not in PRECISIONS:
        raise UserError(f"precision={cfg.precision} is unknown; use one of {', '.join(PRECISIONS)}")


def check_device(name: str) -> None:
    """`device=` names a device this machine has: cpu, or cuda / cuda:N with a CUDA GPU there."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name} is not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return
    if device.type != "cuda":
        raise UserError(f"device={name}: the player runs on cpu or cuda[:N]")
    if not torch.cuda.is_available():
        raise UserError(f"device={name} but torch sees no CUDA GPU on this machine; use device=cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise UserError(f"device={name} but this machine has {count} CUDA GPU(s): cuda:0..cuda:{count - 1}")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 lets the OS pick a free port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); choose another port=") from None
    sock.listen(64)
    return sock


def unauthenticated_warning(bound_ip: str, port: int) -> str | None:
    """One line when the socket is reachable from other machines: the player has no login."""
    if is_loopback_host(bound_ip):
        return None
    where = "every interface" if bound_ip in WILDCARD_HOSTS else bound_ip
    return (
        f"warning: the player listens on {where} (port {port}) and has no authentication: anyone who can "
        "reach it can play the model and read the dataset's frames; host=127.0.0.1 keeps it on this machine"
    )


def main(mode: str | None, args: list[str]) -> int:
    cfg = compose_config(CONFIG_DPATH, "play", args)
    check_settings(cfg)
    model_dpath, dataset_dpath, source = default_inputs(cfg.model_dpath, cfg.dataset_dpath)
    model_dpath = check_inputs(model_dpath, dataset_dpath)
    import torch
    import uvicorn

    from envs.start_clips import StartPicker
    from models.checkpoint import load_model, read_config
    from play.server import PlayerSettings, create_app

    torch.set_num_threads(cfg.threads)
    try:
        if read_config(model_dpath)["kind"] == "tokenizer":
            raise ValueError(f"{model_dpath} holds a tokenizer; the player needs genie_redux(_guided)")
        model = load_model(model_dpath, cfg.device).eval()
    except ValueError as error:
        raise UserError(str(error)) from None
    picker = StartPicker(dataset_dpath, model.tokenizer.config.image_size, cfg.num_prime_frames)
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    settings = PlayerSettings(
        model,
        picker,
        cfg.num_prime_frames,
        cfg.maskgit_steps,
        cfg.temperature,
        cfg.max_sessions,
        cfg.max_upload_bytes,
        bound_host=cfg.host,
        bound_port=port,
        idle_timeout_s=float(cfg.idle_timeout_s),
        precision=cfg.precision,
    )
    app = create_app(settings)
    url_host = f"[{host}]" if ":" in host else host
    print(
        f"player: http://{url_host}:{port}/  ({source}: {model_dpath} on {picker.store.root_dpath}; Ctrl+C stops)"
    )
    sys.stdout.flush()  # the address first: scripts wait for that line (play/browser.py)
    warning = unauthenticated_warning(host, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws_max_size=2 * cfg.max_upload_bytes,  # larger messages close the socket; up to it, a clear refusal
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        limit_concurrency=64,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
