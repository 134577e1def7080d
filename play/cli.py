"""`python run.py play [key=value ...]`: serve the browser player on 127.0.0.1 (keys: play/configs/play.yaml)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from common.config import compose_config
from common.errors import UserError

CONFIG_DPATH = Path(__file__).resolve().parent / "configs"
DEMO_HINT = "run the demo first (python run.py demo) or pass"


def check_inputs(model_dpath: Path, dataset_dpath: Path) -> Path:
    """The world model's checkpoint folder (`model_dpath` may name a training run: its best_model/)."""
    from models.checkpoint import find_checkpoint

    try:
        model_dpath = find_checkpoint(model_dpath)
    except ValueError:
        raise UserError(f"no world model at {model_dpath}; {DEMO_HINT} model_dpath=<checkpoint folder>") from None
    if not (dataset_dpath / "shards").is_dir():
        raise UserError(f"no episode store at {dataset_dpath}; {DEMO_HINT} dataset_dpath=<episode store>")
    return model_dpath


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


def main(mode: str | None, args: list[str]) -> int:
    cfg = compose_config(CONFIG_DPATH, "play", args)
    model_dpath, dataset_dpath = Path(cfg.model_dpath), Path(cfg.dataset_dpath)
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
    settings = PlayerSettings(
        model,
        picker,
        cfg.num_prime_frames,
        cfg.maskgit_steps,
        cfg.temperature,
        cfg.max_sessions,
        cfg.max_upload_bytes,
    )
    app = create_app(settings)
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    print(
        f"player: http://{url_host}:{port}/  ({model_dpath.name} on {picker.store.root_dpath}; Ctrl+C stops)"
    )
    sys.stdout.flush()
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws_max_size=2 * cfg.max_upload_bytes,  # larger messages close the socket; up to it, a clear refusal
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        limit_concurrency=64,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
