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
  {"op": "profile_step", ...train_step's fields except steps and precision}
      -> profile_training_step's reply: s/step, FLOPs, forward/backward/optimizer seconds, ops by self time
  {"op": "gen_one_go", "batch": B, "prime": T0, "frames": N, "steps": S, "seed": R, "num_actions": A}
      -> {"seconds": upstream's one-go sampler, T0 random prime frames -> N frames, timed whole}
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

import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import resource
import statistics
import sys
import time
import traceback
import types


class StandIn(types.ModuleType):
    """A module the environment lacks, imported by upstream code the benchmarks never run (its data
    loaders import cv2, torchvision, pandas, ...: `models.components.vector_quantize` -> `utils.utils` ->
    `data.data`). Any attribute is another stand-in, so `from cv2 import x` succeeds; a call at import time
    (`transform = T.ToTensor()` at module level) gives another stand-in, and a call after the import raises,
    so a model that did use the module fails loudly instead of timing something else."""

    __path__: list[str] = []  # a package: `import torchvision.transforms` resolves through the finder
    importing = False  # set while upstream's `models` is being imported

    def __getattr__(self, attr: str):  # noqa: ANN204
        if attr.startswith("__"):
            raise AttributeError(attr)
        return StandIn(f"{self.__name__}.{attr}")

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        if StandIn.importing:
            return StandIn(f"{self.__name__}()")
        raise RuntimeError(
            f"upstream called {self.__name__}, which is not installed here (stood in at import)"
        )

    def __mro_entries__(self, bases):  # noqa: ANN001, ANN204 (`class X(missing.Base)` at import time)
        return (object,)


class StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: a module no other finder can find, imported by upstream's helper code, becomes
    a StandIn (and is recorded)."""

    def __init__(self, upstream_dpath: str) -> None:
        self.root = os.path.realpath(upstream_dpath) + os.sep
        self.models = os.path.join(self.root, "models") + os.sep
        self.names: list[str] = []

    def imported_by_upstream_helpers(self) -> bool:
        """Whether the import statement being run is in an upstream file outside models/ (its utils and data
        code). The models' own imports stay real, so a missing dependency they use is the usual one-line
        error; installed packages keep their own `try: import x / except ImportError` fallbacks."""
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        if frame is None:
            return False
        fpath = os.path.realpath(frame.f_code.co_filename)
        return fpath.startswith(self.root) and not fpath.startswith(self.models)

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201
        top = fullname.split(".")[0]
        if top in ("models", "torch", "einops", "beartype", "numpy"):  # what the models run: never stood in
            return None
        if not (isinstance(sys.modules.get(top), StandIn) or self.imported_by_upstream_helpers()):
            return None
        if "." not in fullname:
            self.names.append(fullname)
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):  # noqa: ANN001, ANN201
        return StandIn(spec.name)

    def exec_module(self, module) -> None:  # noqa: ANN001
        pass


def import_upstream(upstream_dpath: str):  # noqa: ANN201 (upstream's `models` module)
    """Upstream's `models` package -> (module, names of the absent modules stood in while importing it)."""
    sys.path.insert(0, upstream_dpath)
    # our editable install adds a meta-path hook that maps `models`, `training`, ... to our repo
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__ + repr(f)]
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        del sys.modules[name]
    finder = StandInFinder(upstream_dpath)
    sys.meta_path.append(finder)
    StandIn.importing = True
    try:
        import models
    finally:
        StandIn.importing = False
        sys.meta_path.remove(finder)

    models_file = os.path.realpath(models.__file__)
    if not models_file.startswith(os.path.realpath(upstream_dpath) + os.sep):
        raise ImportError(f"`models` resolved to {models_file}, not inside {upstream_dpath}")
    if not hasattr(models, "MaskGIT") and hasattr(models, "MaskGit"):
        models.MaskGIT = models.MaskGit  # the NeurIPS branch's spelling
    for name in ("Tokenizer", "MaskGIT", "Dynamics", "GenieReduxGuided"):
        if not hasattr(models, name):
            raise ImportError(f"upstream `models` has no {name}")
    return models, finder.names


def matmul_gflop_per_s(repeats: int = 5) -> float:
    """What this process gets from one large fp32 matmul (4096x512 @ 512x2048, the shape of a 512-wide
    MLP over 16 frames of 256 tokens), median of `repeats`: the reference a model step's GFLOP/s is read
    against."""
    import torch

    a, b = torch.randn(4096, 512), torch.randn(512, 2048)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 4096 * 512 * 2048 / statistics.median(times) / 1e9


def profile_training_step(forward, optimizer, encode=None) -> dict:  # noqa: ANN001
    """One training step (`forward()` -> loss; backward; `optimizer.step()`) measured three ways, after
    one untimed step: wall seconds of a plain step, FLOPs of forward + backward (FlopCounterMode), and a
    torch.profiler run -> {"s_per_step", "flops", "encode_flops" (of `encode()`, the frozen tokenizer's
    part of a world-model step, counted alone; 0 without), "matmul_gflop_per_s" (`matmul_gflop_per_s`),
    "phases": {forward|backward|optimizer: s}, "ops": [[op name, self seconds], ...] largest first}.
    Torch and the standard library only: the upstream worker and our side
    (benchmarks/bench_profile_step.py) measure with this same function."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from torch.utils.flop_counter import FlopCounterMode

    def step(phases: bool) -> None:
        ranges = {name: (record_function(name) if phases else contextlib.nullcontext()) for name in PHASES}
        with ranges["forward"]:
            loss = forward()
        optimizer.zero_grad(set_to_none=True)
        with ranges["backward"]:
            loss.backward()
        with ranges["optimizer"]:
            optimizer.step()

    step(False)  # one-off allocations and lazy state (AdamW moments)
    start = time.perf_counter()
    step(False)
    seconds = time.perf_counter() - start
    counter = FlopCounterMode(display=False)
    with counter:
        loss = forward()
        loss.backward()
    optimizer.zero_grad(set_to_none=True)
    encode_counter = FlopCounterMode(display=False)
    if encode is not None:
        with encode_counter, torch.no_grad():
            encode()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(True)
    events = prof.key_averages()
    phases = {e.key: e.cpu_time_total / 1e6 for e in events if e.key in PHASES}
    ops = sorted(
        ([e.key, e.self_cpu_time_total / 1e6] for e in events if e.key not in PHASES), key=lambda x: -x[1]
    )
    return {
        "s_per_step": seconds,
        "flops": counter.get_total_flops(),
        "encode_flops": encode_counter.get_total_flops(),
        "matmul_gflop_per_s": matmul_gflop_per_s(),
        "phases": phases,
        "ops": ops[:200],
    }


PHASES = ("forward", "backward", "optimizer")


def use_sampling_settings(model, steps: int, temperature: float) -> None:  # noqa: ANN001
    """The NeurIPS branch's Dynamics.sample reads its MaskGIT steps and temperature from attributes and
    ignores the keywords (master reads the keywords): set both so either samples as asked."""
    model.dynamics.inference_steps = steps
    model.dynamics.sample_temperature = temperature


class Worker:
    def __init__(self, upstream) -> None:  # noqa: ANN001
        self.up = upstream
        self.model = None
        self.primed: dict[tuple, tuple] = {}  # (batch, context) -> (prime token ids [B, n], action codes)
        self.trained: dict[str, object] = {}  # kind -> the model train_for trained

    def build(self, kind: str, tokenizer: dict, maskgit: dict, tdce: bool, tok=None, layout: str = "cvpr"):  # noqa: ANN001, ANN201
        """As upstream's construct_model: Tokenizer; for the guided model a frozen tokenizer + MaskGIT
        (`tok`: an already trained tokenizer instead of a new one). `layout` "neurips": the NeurIPS
        branch's GenieReduxGuided, which one-hot encodes actions itself (no action embeddings)."""
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
        if layout == "neurips":
            return self.up.GenieReduxGuided(tok, dynamics)
        return self.up.GenieReduxGuided(tok, dynamics, use_action_embeddings=True)

    def training_setup(self, req: dict):  # noqa: ANN201
        """The model a step request names, a random batch and AdamW -> (forward() -> loss, optimizer)."""
        import torch

        torch.set_num_threads(req["threads"])
        torch.manual_seed(0)
        model = self.build(
            req["kind"], req["tokenizer"], req["maskgit"], req["tdce"], layout=req.get("layout", "cvpr")
        ).train()
        if req["kind"] != "tokenizer":
            model.tokenizer.eval()  # upstream freezes it in GenieReduxGuided.__init__
        b, t, size = req["batch"], req["frames"], req["tokenizer"]["image_size"]
        videos = torch.rand(b, 3, t, size, size)  # upstream layout [B, C, T, H, W]
        actions = torch.nn.functional.one_hot(
            torch.randint(0, req["num_actions"], (b, t - 1)), req["num_actions"]
        ).float()  # [B, T-1, A]: one-hot, as upstream's data loader gives them
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def forward():  # noqa: ANN202
            return model(videos) if req["kind"] == "tokenizer" else model(videos=videos, actions=actions)

        return model, videos, forward, optimizer

    def train_step(self, req: dict) -> dict:
        import torch

        _, _, forward, optimizer = self.training_setup(req)
        times = []
        for _ in range(req["steps"]):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=req["precision"] == "bf16"):
                loss = forward()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
        return {"s_per_step": statistics.median(times[1:] or times), "peak_rss_gb": peak_gb}

    def profile_step(self, req: dict) -> dict:
        """`train_step`'s model and batch, measured by `profile_training_step`."""
        model, videos, forward, optimizer = self.training_setup(req)

        def encode():  # noqa: ANN202
            return model.tokenizer(videos, return_only_codebook_ids=True)

        return profile_training_step(forward, optimizer, encode if req["kind"] != "tokenizer" else None)

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
        model = self.build(
            kind, req["tokenizer"], req["maskgit"], req["tdce"], tok, req.get("layout", "cvpr")
        ).train()
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
        use_sampling_settings(model, req["steps"], req["temperature"])
        with torch.no_grad():
            video = model.sample(
                prime_frames=prime, actions=actions, num_frames=req["num_frames"],
                inference_steps=req["steps"], sample_temperature=req["temperature"],
            )  # fmt: skip
        video = video.clamp(0, 1).permute(0, 2, 3, 4, 1).contiguous()  # [B, N, H, W, 3]
        np.save(req["out_fpath"], video.numpy().astype(np.float32))
        return {"shape": list(video.shape)}

    def gen_one_go(self, req: dict) -> dict:
        """Upstream's one-go sampler (GenieReduxGuided.sample, the papers' evaluation mode): `prime` random
        frames -> `frames` new frames refined jointly at `steps` MaskGIT steps, timed whole (prime
        tokenization and decoding included) -> {"seconds"}."""
        import torch

        model, b, t0 = self.model, req["batch"], req["prime"]
        size = model.tokenizer.image_size[0]
        generator = torch.Generator().manual_seed(b)
        prime = torch.rand(b, 3, t0, size, size, generator=generator)  # [B, C, T0, H, W]
        actions = torch.randint(0, req["num_actions"], (b, t0 + req["frames"] - 1), generator=generator)
        torch.manual_seed(req["seed"])
        use_sampling_settings(model, req["steps"], 1.0)
        start = time.perf_counter()
        with torch.no_grad():
            video = model.sample(
                prime_frames=prime, actions=actions, num_frames=req["frames"],
                inference_steps=req["steps"], sample_temperature=1.0,
            )  # fmt: skip
        seconds = time.perf_counter() - start
        if tuple(video.shape[:3]) != (b, 3, req["frames"]):
            raise RuntimeError(
                f"upstream sampled shape {tuple(video.shape)}, expected ({b}, 3, {req['frames']}, H, W)"
            )
        return {"seconds": seconds}

    def build_guided(self, req: dict) -> dict:
        import torch

        torch.set_num_threads(req["threads"])
        torch.manual_seed(0)
        self.model = self.build(
            "genie_redux_guided",
            req["tokenizer"],
            req["maskgit"],
            req["tdce"],
            layout=req.get("layout", "cvpr"),
        ).eval()
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
            use_sampling_settings(model, req["steps"], 1.0)
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
        upstream, stood_in = import_upstream(sys.argv[1])
    except ModuleNotFoundError as exc:
        inside = exc.name and exc.name.split(".")[0] not in ("models", "tools")
        reply({"error": f"{type(exc).__name__}: {exc}", "missing_module": exc.name if inside else None})
        return
    except Exception as exc:  # noqa: BLE001 (reported to the parent as one line)
        reply({"error": f"{type(exc).__name__}: {exc}", "missing_module": None})
        return
    reply({"ready": True, "models_file": upstream.__file__, "stood_in": sorted(set(stood_in))})
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
