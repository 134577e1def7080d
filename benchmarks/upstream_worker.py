"""Child process that times upstream GenieRedux's own models (never imported by our code).

Started by `benchmarks/upstream.py` as `python -I upstream_worker.py UPSTREAM_DPATH`: isolated mode, so
neither this folder nor PYTHONPATH is on sys.path; the upstream checkout is put first and our editable
install's import hook is removed, so `import models` is upstream's package and nothing of ours loads here.
It imports only the standard library, torch, and upstream's `models` package.

Protocol: one JSON object per line on stdin (a request), one JSON object per line back on the original
stdout (the reply); anything upstream prints goes to stderr. The first reply, sent unasked, says whether
upstream imported: {"ready": true, "models_file": ...} or {"error": ..., "missing_module": NAME|null}.
Requests:
  {"op": "train_step", "kind": "tokenizer"|"genie_redux_guided", "tokenizer": {...}, "maskgit": {...},
   "tdce": bool, "steps": N, "threads": N, "precision": "fp32"|"bf16", "batch": B, "frames": T,
   "num_actions": A}
      -> {"s_per_step": median of the steps after the first, "peak_rss_gb": ru_maxrss of this process}
  {"op": "build_guided", "tokenizer": {...}, "maskgit": {...}, "tdce": bool, "threads": N}
      -> {"parameters": count}
  {"op": "gen_frame", "batch": B, "context": T0, "steps": S, "seed": R, "num_actions": A}
      -> {"seconds": one generated frame: Dynamics.sample over the window + decoding it}
  {"op": "train_for", "kind": ..., "tokenizer": {...}, "maskgit": {...}, "tdce": bool, "threads": N,
   "seed": S, "minutes": M, "data_dpath": D, "batch": B, "frames": T, "num_actions": A, "lr_max": L,
   "lr_min": L, "warmup_steps": W, "weight_decay": WD, "grad_clip": C}
      -> {"steps", "samples", "train_seconds", "losses": [[step, loss], ...]}: trains for M minutes of
      training steps on the windows D/starts.npy lists (frames D/frames.npy uint8 [N, H, W, 3], the action
      taken after each frame D/actions.npy), in order, with upstream's AdamW grouping (no decay on params
      of ndim < 2), warm-up then cosine to lr_min at the step count planned from the speed of its first
      steps (planned again at each quarter); the guided model freezes the tokenizer this process trained
  {"op": "sample", "kind": "genie_redux_guided", "in_fpath": F, "out_fpath": G, "num_frames": N,
   "steps": S, "temperature": T, "seed": R}
      -> {}: F.npz holds prime frames [B, T0, H, W, 3] float in [0, 1] and actions [B, T0 + N - 1]; upstream's
      own one-go sampler (GenieReduxGuided.sample) writes the N generated frames to G.npy [B, N, H, W, 3]
The constructor keyword dicts come from the parent (`benchmarks/upstream.py` maps our presets onto them).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import traceback


def import_upstream(upstream_dpath: str):  # noqa: ANN201 (upstream's `models` module)
    sys.path.insert(0, upstream_dpath)
    # our editable install adds a meta-path hook that maps `models`, `training`, ... to our repo
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__ + repr(f)]
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        del sys.modules[name]
    import models

    models_file = os.path.realpath(models.__file__)
    if not models_file.startswith(os.path.realpath(upstream_dpath) + os.sep):
        raise ImportError(f"`models` resolved to {models_file}, not inside {upstream_dpath}")
    for name in ("Tokenizer", "MaskGIT", "Dynamics", "GenieReduxGuided"):
        if not hasattr(models, name):
            raise ImportError(f"upstream `models` has no {name}")
    return models


class Worker:
    def __init__(self, upstream) -> None:  # noqa: ANN001
        self.up = upstream
        self.model = None
        self.primed: dict[tuple, tuple] = {}  # (batch, context) -> (prime token ids [B, n], action codes)
        self.trained: dict[str, object] = {}  # kind -> the model train_for trained

    def build(self, kind: str, tokenizer: dict, maskgit: dict, tdce: bool, tok=None):  # noqa: ANN001, ANN201
        """As upstream's construct_model: Tokenizer; for the guided model a frozen tokenizer + MaskGIT
        (`tok`: an already trained tokenizer instead of a new one)."""
        tok = tok if tok is not None else self.up.Tokenizer(**tokenizer)
        if kind == "tokenizer":
            return tok
        extra = {"use_distance_weighted_loss": True, "tokenizer_codebook": tok.vq.codebook} if tdce else {}
        dynamics = self.up.Dynamics(
            maskgit=self.up.MaskGIT(**maskgit),
            inference_steps=1,
            sample_temperature=1.0,
            mask_schedule="cosine",
            **extra,
        )
        return self.up.GenieReduxGuided(tok, dynamics, use_action_embeddings=True)

    def train_step(self, req: dict) -> dict:
        import torch

        torch.set_num_threads(req["threads"])
        torch.manual_seed(0)
        model = self.build(req["kind"], req["tokenizer"], req["maskgit"], req["tdce"]).train()
        if req["kind"] != "tokenizer":
            model.tokenizer.eval()  # upstream freezes it in GenieReduxGuided.__init__
        b, t, size = req["batch"], req["frames"], req["tokenizer"]["image_size"]
        videos = torch.rand(b, 3, t, size, size)  # upstream layout [B, C, T, H, W]
        actions = torch.nn.functional.one_hot(
            torch.randint(0, req["num_actions"], (b, t - 1)), req["num_actions"]
        ).float()  # [B, T-1, A]: one-hot, as upstream's data loader gives them
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        times = []
        for _ in range(req["steps"]):
            start = time.perf_counter()
            ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=req["precision"] == "bf16")
            with ctx:
                loss = model(videos) if req["kind"] == "tokenizer" else model(videos=videos, actions=actions)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
        return {"s_per_step": statistics.median(times[1:] or times), "peak_rss_gb": peak_gb}

    def train_for(self, req: dict) -> dict:
        import math

        import numpy as np
        import torch

        torch.set_num_threads(req["threads"])
        torch.manual_seed(req["seed"])
        kind = req["kind"]
        tok = self.trained.get("tokenizer") if kind != "tokenizer" else None
        if kind != "tokenizer" and tok is None:
            raise RuntimeError("train the tokenizer first (train_for kind=tokenizer in this process)")
        model = self.build(kind, req["tokenizer"], req["maskgit"], req["tdce"], tok).train()
        if kind != "tokenizer":
            model.tokenizer.eval()
        frames = np.load(os.path.join(req["data_dpath"], "frames.npy"), mmap_mode="r")  # [N, H, W, 3]
        actions = np.load(os.path.join(req["data_dpath"], "actions.npy"))  # [N]
        starts = np.load(os.path.join(req["data_dpath"], "starts.npy"))  # [K] window starts, in order
        b, t, a = req["batch"], req["frames"], req["num_actions"]
        params = [p for p in model.parameters() if p.requires_grad]
        decayed, plain = [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decayed}, {"params": plain, "weight_decay": 0.0}],
            lr=req["lr_max"], betas=(0.9, 0.99), weight_decay=req["weight_decay"],
        )  # fmt: skip
        budget_s, planned = req["minutes"] * 60.0, None
        spent, mark, step, losses = 0.0, (0, 0.0), 0, []
        while planned is None or step < planned:
            total = planned or 10**9
            warm = req["warmup_steps"]
            if step < warm:
                lr = req["lr_max"] * (0.5 + 0.5 * step / warm)
            else:
                progress = min(max((step - warm) / max(total - 1 - warm, 1), 0.0), 1.0)
                lr = req["lr_min"] + 0.5 * (req["lr_max"] - req["lr_min"]) * (
                    1 + math.cos(math.pi * progress)
                )
            for group in optimizer.param_groups:
                group["lr"] = lr
            started = time.perf_counter()
            index = starts[(step * b + np.arange(b)) % len(starts)]  # [B]
            clip = np.stack([frames[i : i + t] for i in index])  # [B, T, H, W, 3]
            videos = torch.from_numpy(clip).float().div_(255.0).permute(0, 4, 1, 2, 3)  # [B, 3, T, H, W]
            if kind == "tokenizer":
                loss = model(videos)
            else:
                ids = torch.from_numpy(np.stack([actions[i : i + t - 1] for i in index])).long()  # [B, T-1]
                loss = model(videos=videos, actions=torch.nn.functional.one_hot(ids, a).float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if req["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(params, req["grad_clip"])
            optimizer.step()
            spent += time.perf_counter() - started
            step += 1
            if step % 10 == 0:
                losses.append([step, float(loss.detach())])
            if planned is None and step == 23:  # 3 untimed, 20 timed, as our trainer's calibration
                planned = step + max(1, int((budget_s - spent) / ((spent - mark[1]) / 23)))
                mark = (step, spent)
            elif planned is not None and step < planned and step % max(1, planned // 4) == 0:
                speed = (spent - mark[1]) / max(step - mark[0], 1)  # the speed since the last plan
                planned, mark = step + max(1, int((budget_s - spent) / speed)), (step, spent)
        self.trained[kind] = model if kind != "tokenizer" else model.eval()
        return {"steps": step, "samples": step * b, "train_seconds": spent, "losses": losses}

    def sample(self, req: dict) -> dict:
        import numpy as np
        import torch

        model = self.trained[req["kind"]].eval()
        data = np.load(req["in_fpath"])
        prime = torch.from_numpy(data["prime"]).float().permute(0, 4, 1, 2, 3)  # [B, 3, T0, H, W]
        actions = torch.from_numpy(data["actions"]).long()  # [B, T0 + N - 1]
        torch.manual_seed(req["seed"])
        with torch.no_grad():
            video = model.sample(
                prime_frames=prime, actions=actions, num_frames=req["num_frames"],
                inference_steps=req["steps"], sample_temperature=req["temperature"],
            )  # fmt: skip
        video = video.clamp(0, 1).permute(0, 2, 3, 4, 1).contiguous()  # [B, N, H, W, 3]
        np.save(req["out_fpath"], video.numpy().astype(np.float32))
        return {"shape": list(video.shape)}

    def build_guided(self, req: dict) -> dict:
        import torch

        torch.set_num_threads(req["threads"])
        torch.manual_seed(0)
        self.model = self.build("genie_redux_guided", req["tokenizer"], req["maskgit"], req["tdce"]).eval()
        self.primed.clear()
        return {"parameters": sum(p.numel() for p in self.model.parameters())}

    def gen_frame(self, req: dict) -> dict:
        """One new frame after `context` prime frames, as one iteration of upstream's frame-by-frame loop
        (GenieReduxGuided.generate_interactive_video): its Dynamics.sample over the window at `steps`
        MaskGIT steps, then decoding the window's tokens. Tokenizing the prime frames is not timed."""
        import torch

        model, b, t0 = self.model, req["batch"], req["context"]
        with torch.no_grad():
            if (b, t0) not in self.primed:
                size = model.tokenizer.image_size[0]
                generator = torch.Generator().manual_seed(b)
                prime = torch.rand(b, 3, t0, size, size, generator=generator)  # [B, C, T0, H, W]
                ids = model.get_tokenizer_codebook_ids(prime).reshape(b, -1)  # [B, T0*h*w]
                action_ids = torch.randint(0, req["num_actions"], (b, t0), generator=generator)
                self.primed[b, t0] = (ids, model.get_codes_from_indices(action_ids))  # [B, T0, D]
            ids, actions = self.primed[b, t0]
            num_tokens = model.num_tokens_per_frames(1, num_first_frames=t0)
            patch_shape = model.get_video_patch_shape(t0 + 1, num_first_frames=t0)
            torch.manual_seed(req["seed"])
            start = time.perf_counter()
            new = model.dynamics.sample(
                prime_token_ids=ids,
                actions=actions,
                num_tokens=num_tokens,
                patch_shape=patch_shape,
                inference_steps=req["steps"],
                mask_schedule="cosine",
                sample_temperature=1.0,
                tokenizer=model.tokenizer,
            )
            video = model.decode_from_codebook_indices(torch.cat((ids, new), dim=-1))
            seconds = time.perf_counter() - start
        if tuple(video.shape[:3]) != (b, 3, t0 + 1):
            raise RuntimeError(
                f"upstream decoded shape {tuple(video.shape)}, expected ({b}, 3, {t0 + 1}, H, W)"
            )
        return {"seconds": seconds}


def main() -> None:
    reply_stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever upstream prints goes to stderr, not into the protocol
    sys.stdout = sys.stderr

    def reply(obj: dict) -> None:
        reply_stream.write(json.dumps(obj) + "\n")

    try:
        upstream = import_upstream(sys.argv[1])
    except ModuleNotFoundError as exc:
        inside = exc.name and exc.name.split(".")[0] not in ("models", "tools")
        reply({"error": f"{type(exc).__name__}: {exc}", "missing_module": exc.name if inside else None})
        return
    except Exception as exc:  # noqa: BLE001 (reported to the parent as one line)
        reply({"error": f"{type(exc).__name__}: {exc}", "missing_module": None})
        return
    reply({"ready": True, "models_file": upstream.__file__})
    worker = Worker(upstream)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply(getattr(worker, req["op"])(req))
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            reply({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
