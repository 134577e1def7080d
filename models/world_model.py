"""The world-model inference API used by evaluation, training validation, the player and AutoExplore.

A batch of B independent sessions: `reset` with prime frames, then `step(actions)` generates one
frame per session. Generation happens in token space with MaskGIT; the dynamics' temporal keys/values
of past frames are cached, so each MaskGIT iteration runs the transformer on the new frame's tokens
only, and the tokenizer's causal decoder decodes each frame once with its own cache.

Context is a sliding window of the dynamics' training length W: a new frame attends to the W-1 frames
before it. Temporal attention uses relative time (models/components/attention.py), so a cached key
means the same whatever frame the window starts at: sliding the window is dropping the oldest cache
entry, never a recompute, and frame 1000 costs what frame 20 costs. The reference path
(`use_cache=False`) recomputes the whole history with the same W-frame attention window each MaskGIT
iteration and gives the same frames.

Precision: `precision="auto"` (the default) runs every call under bf16 autocast on CUDA and in fp32
elsewhere; "bf16" autocasts on any device (CPU autocast is how CI checks the GPU path), "fp32" never.
Frames and logits come back as float32 whatever ran inside. `compile=True` wraps the per-step calls
(the cached dynamics and the tokenizer's encode/decode steps) in `torch.compile` with dynamic shapes,
so the growing cache does not recompile each frame.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from models.checkpoint import find_checkpoint, hub_checkpoint, load_model
from models.components import FrameCache
from models.genie import GenieBase
from models.maskgit import maskgit_sample

PRECISIONS = ("auto", "fp32", "bf16")
Method = TypeVar("Method", bound=Callable[..., Any])


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The dtype inference autocasts to on `device`: bf16 for "bf16" (any device) and for "auto" on CUDA;
    None (plain fp32) for "fp32" and for "auto" elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown inference precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    is_cuda = torch.device(device).type == "cuda"
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and is_cuda) else None


def inference(method: Method) -> Method:
    """A WorldModel call: no gradients, under the session's autocast (if any)."""

    @functools.wraps(method)
    def wrapper(self: WorldModel, *args: Any, **kwargs: Any) -> Any:
        dtype = autocast_dtype(self.precision, self.device)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class StepResult:
    frames: torch.Tensor  # [B, 3, H, W] in [0, 1]
    token_logits: torch.Tensor  # [B, h*w, K]: the distribution each token was sampled from


class WorldModel:
    def __init__(
        self, model: GenieBase, use_cache: bool = True, precision: str = "auto", compile: bool = False
    ) -> None:
        if not isinstance(model, GenieBase):
            raise ValueError(
                f"WorldModel needs a genie_redux or genie_redux_guided model, got {type(model).__name__}"
            )
        autocast_dtype(precision, "cpu")  # a bad name fails here, not at the first step
        self.model = model.eval()
        self.use_cache = use_cache  # False recomputes the whole history per MaskGIT step (reference path)
        self.precision = precision
        # the calls every generated frame makes, compiled or as they are
        wrap = functools.partial(torch.compile, dynamic=True) if compile else (lambda fn: fn)
        self.logits_cached = wrap(model.dynamics.logits_cached)
        self.context_cached = wrap(model.dynamics.context_cached)
        self.encode_step = wrap(model.tokenizer.encode_step)
        self.decode_step = wrap(model.tokenizer.decode_step)
        self.dynamics = model.dynamics
        self.tokenizer = model.tokenizer
        self.max_frames = self.dynamics.config.num_frames  # W: frames a generated frame attends to
        self.decoder_frames = self.tokenizer.config.num_frames  # the same for the tokenizer's decoder
        self.token_history: torch.Tensor | None = None
        self.encoder_cache: FrameCache | None = None  # real frames' encoder keys/values (observe)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        expected_image_size: int | None = None,
        precision: str = "auto",
    ) -> WorldModel:
        """The one way to load a world model for inference (evaluation, the player, AutoExplore).

        `path`: a checkpoint, a run directory or a training step (`models.checkpoint.find_checkpoint`);
        `expected_image_size`: the frame size of the data it will see; `precision`: see the module
        docstring. Any problem is one ValueError line.
        """
        dpath = find_checkpoint(path)
        model = load_model(dpath, device, expected_image_size=expected_image_size)  # damage reported first
        if not isinstance(model, GenieBase):
            raise ValueError(
                f"checkpoint {dpath} holds a {model.kind}; the world model needs genie_redux(_guided)"
            )
        return cls(model, precision=precision)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        device: str | torch.device = "cpu",
        expected_image_size: int | None = None,
        revision: str | None = None,
        cache_dpath: str | Path | None = None,
    ) -> WorldModel:
        """A world model from a folder on this machine (a checkpoint, a run or a training step, as
        `from_checkpoint` takes) or, with huggingface_hub installed, a Hub repo id ("owner/name") holding a
        checkpoint at its root (`revision`: a branch, tag or commit; `cache_dpath`: the hub client's cache).
        Any problem, offline included, is one ValueError line."""
        path = Path(name_or_path).expanduser()
        if not path.exists():
            path = hub_checkpoint(str(name_or_path), revision, cache_dpath)
        return cls.from_checkpoint(path, device, expected_image_size)

    @property
    def is_action_guided(self) -> bool:
        return self.model.is_action_guided

    @property
    def num_actions(self) -> int:
        return self.model.num_actions

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @inference
    def infer_actions(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [B, T, 3, H, W] -> LAM latent actions int64 [B, T-1] (GenieRedux only)."""
        if self.is_action_guided:
            raise ValueError("GenieRedux-G uses ground-truth actions and has no LAM to infer them")
        return self.model.infer_actions(frames)

    @inference
    def reset(self, prime_frames: torch.Tensor, prime_actions: torch.Tensor | None = None) -> None:
        """Start B sessions from prime_frames [B, T0, 3, H, W]; prime_actions [B, T0-1] (G: required).

        At most the last W-1 prime frames are kept (room for the first generated frame).
        """
        b, t0 = prime_frames.shape[:2]
        if t0 > self.max_frames - 1:
            prime_frames, t0 = prime_frames[:, -(self.max_frames - 1) :], self.max_frames - 1
            if prime_actions is not None:
                prime_actions = prime_actions[:, prime_actions.shape[1] - (t0 - 1) :]
        if prime_actions is None:
            if self.is_action_guided and t0 > 1:
                raise ValueError("GenieRedux-G needs prime_actions [B, T0-1] for more than one prime frame")
            prime_actions = (
                self.infer_actions(prime_frames)
                if t0 > 1
                else torch.zeros(b, 0, dtype=torch.long, device=self.device)
            )
        # [B, T0, h, w]; the encoder cache lets observe() encode real frames one at a time
        self.token_history, self.encoder_cache = self.encode_step(prime_frames, None)
        # per-frame action embeddings [B, T0, D]: frame 0 gets the dynamics' "no action yet" embedding
        self.action_history = self.dynamics.frame_actions(self.model.embed_actions(prime_actions))
        if self.use_cache:
            tokens, frame_actions = self.token_history, self.action_history
            self.dynamics_cache = FrameCache(self.context_cached(tokens, frame_actions, None))
            self.decoder_cache = self.decode_step(tokens, None)[1]

    @inference
    def reset_rows(
        self, rows: torch.Tensor, prime_frames: torch.Tensor, prime_actions: torch.Tensor | None = None
    ) -> None:
        """Re-prime sessions `rows` (int64 [R]) from prime_frames [R, T, 3, H, W] (actions [R, T-1]).

        The other sessions keep their context. T must be the number of frames every session holds
        now, so the batch stays one block of caches; afterwards row r is exactly a fresh `reset`.
        """
        if self.token_history is None:
            raise ValueError("call reset(prime_frames) before reset_rows")
        t0, held = prime_frames.shape[1], self.token_history.shape[1]
        if t0 != held:
            raise ValueError(f"reset_rows needs {held} prime frames (the sessions' context), got {t0}")
        if self.is_action_guided and prime_actions is None and t0 > 1:
            raise ValueError("GenieRedux-G needs prime_actions [R, T-1] for more than one prime frame")
        if prime_actions is None:
            prime_actions = self.infer_actions(prime_frames)
        rows = rows.to(self.device)
        tokens, encoder_kv = self.encode_step(prime_frames, None)  # [R, T, h, w]
        if self.encoder_cache is not None and self.encoder_cache.num_frames != t0:
            self.encoder_cache = None  # after generation: observe() needs a fresh reset
        if self.encoder_cache is not None:
            self.encoder_cache = _replace_rows(self.encoder_cache, rows, encoder_kv)
        self.token_history[rows] = tokens
        self.action_history[rows] = self.dynamics.frame_actions(self.model.embed_actions(prime_actions))
        if self.use_cache:
            new_kv = self.context_cached(tokens, self.action_history[rows], None)
            self.dynamics_cache = _replace_rows(self.dynamics_cache, rows, FrameCache(new_kv))
            if self.decoder_cache is not None and self.decoder_cache.num_frames != t0:
                self.decoder_cache = None  # a shorter decoder window: rebuilt when frames are decoded
            if self.decoder_cache is not None:
                self.decoder_cache = _replace_rows(
                    self.decoder_cache, rows, self.decode_step(tokens, None)[1]
                )

    @inference
    def next_frames_logits(self, actions: torch.Tensor) -> torch.Tensor:
        """The first MaskGIT iteration only: actions int64 [B, Tn] -> logits [B, Tn*h*w, K] of the
        Tn fully masked frames they lead to (what 1 MaskGIT step samples from); nothing is committed."""
        if self.token_history is None:
            raise ValueError("call reset(prime_frames) before next_frames_logits")
        b, tn = actions.shape
        h, w = self.dynamics.grid
        action_embeds = self.model.embed_actions(actions.to(self.device))  # [B, Tn, D]
        masked = torch.full((b, tn, h, w), self.dynamics.mask_id, dtype=torch.long, device=self.device)
        past = self.dynamics_cache.last(self.max_frames - tn) if self.use_cache else None
        return self.new_frame_logits(masked, action_embeds, past).float()

    @inference
    def observe(self, frames: torch.Tensor, actions: torch.Tensor, max_context: int) -> None:
        """Append frames seen in the real game: frames [B, 1, 3, H, W] that actions int64 [B] led to.

        Each frame is encoded once, against the encoder's cache; the newest `max_context` frames of
        context are kept. Nothing is decoded: the decoder cache is dropped, and rebuilt from the
        token history if frames are generated afterwards.
        """
        if self.encoder_cache is None:
            raise ValueError(
                "observe() follows reset() or observe(): generated frames have no pixels to encode"
            )
        token_ids, encoder_cache = self.encode_step(frames, self.encoder_cache)  # [B, 1, h, w]
        self.encoder_cache = encoder_cache.last(max_context)
        action_embeds = self.model.embed_actions(actions.reshape(-1, 1).to(self.device))  # [B, 1, D]
        if self.use_cache:
            past = self.dynamics_cache.last(self.max_frames - 1)
            new_kv = self.context_cached(token_ids, action_embeds, past)
            self.dynamics_cache = past.appended(new_kv).last(max_context)
            self.decoder_cache = None
        self.token_history = torch.cat([self.token_history, token_ids], dim=1)[:, -max_context:]
        self.action_history = torch.cat([self.action_history, action_embeds], dim=1)[:, -max_context:]

    def new_frame_logits(
        self, token_ids: torch.Tensor, new_actions: torch.Tensor, past: FrameCache | None
    ) -> torch.Tensor:
        """token_ids [B, Tn, h, w] of new frames, new_actions [B, Tn, D] -> logits [B, Tn*h*w, K].

        `past`: the cache of the frames the new ones attend to (cached path only).
        """
        b, tn = token_ids.shape[:2]
        if self.use_cache:
            logits = self.logits_cached(token_ids, new_actions, past)[0]
        else:  # whole history, each frame attending to its own last W frames
            all_tokens = torch.cat([self.token_history, token_ids], dim=1)
            all_actions = torch.cat([self.action_history, new_actions], dim=1)
            logits = self.dynamics.logits(all_tokens, all_actions, window=self.max_frames)[:, -tn:]
        return logits.reshape(b, -1, logits.shape[-1]).float()  # MaskGIT ranks confidences in fp32

    @inference
    def generate(
        self,
        actions: torch.Tensor,
        steps: int,
        temperature: float,
        schedule: str,
        generator: torch.Generator | None,
        anneal_temperature: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample Tn = actions.shape[1] new frames jointly; -> (frames [B, Tn, 3, H, W], logits [B, Tn*S, K]).
        `anneal_temperature`: the token temperature falls to 0 over the MaskGIT steps (models/maskgit.py)."""
        if self.token_history is None:
            raise ValueError("call reset(prime_frames) before step/rollout")
        b, tn = actions.shape
        if tn >= self.max_frames:
            raise ValueError(f"can generate at most {self.max_frames - 1} frames jointly, got {tn}")
        h, w = self.dynamics.grid
        action_embeds = self.model.embed_actions(actions.to(self.device))  # [B, Tn, D]
        # the frames the new ones attend to: together with them, at most W (dropping older entries)
        past = self.dynamics_cache.last(self.max_frames - tn) if self.use_cache else None
        token_ids, logits = maskgit_sample(
            lambda ids: self.new_frame_logits(ids.view(b, tn, h, w), action_embeds, past),
            b,
            tn * h * w,
            self.dynamics.mask_id,
            self.device,
            steps,
            temperature,
            schedule,
            generator,
            anneal_temperature,
        )
        token_ids = token_ids.view(b, tn, h, w)
        frames = self.commit(token_ids, action_embeds, past)
        return frames.float(), logits.float()

    def commit(
        self, token_ids: torch.Tensor, action_embeds: torch.Tensor, past: FrameCache | None
    ) -> torch.Tensor:
        """Append final tokens to the history and caches; decode them once -> frames [B, Tn, 3, H, W]."""
        tn = token_ids.shape[1]
        if self.use_cache:
            new_kv = self.context_cached(token_ids, action_embeds, past)
            self.dynamics_cache = past.appended(new_kv)
            if self.decoder_cache is None:  # after observe(): decode the context again
                context = self.token_history[:, -(self.decoder_frames - tn) :]
                self.decoder_cache = self.decode_step(context, None)[1]
            decoder_past = self.decoder_cache.last(self.decoder_frames - tn)
            frames, self.decoder_cache = self.decode_step(token_ids, decoder_past)
        self.token_history = torch.cat([self.token_history, token_ids], dim=1)
        self.action_history = torch.cat([self.action_history, action_embeds], dim=1)
        self.encoder_cache = None  # generated frames exist as tokens only
        if self.use_cache:
            # only the window is ever read again: long sessions stay O(W) in memory and time
            self.token_history = self.token_history[:, -self.max_frames :]
            self.action_history = self.action_history[:, -self.max_frames :]
            return frames
        return self.tokenizer.decode(self.token_history, window=self.decoder_frames)[:, -tn:]

    def step(
        self,
        actions: torch.Tensor,
        steps: int = 25,
        temperature: float = 1.0,
        schedule: str = "cosine",
        generator: torch.Generator | None = None,
        anneal_temperature: bool = False,
    ) -> StepResult:
        """actions int64 [B] -> the next frame of every session."""
        frames, logits = self.generate(
            actions.reshape(-1, 1), steps, temperature, schedule, generator, anneal_temperature
        )
        return StepResult(frames[:, 0], logits)

    @inference
    def rollout(
        self,
        prime_frames: torch.Tensor,
        actions: torch.Tensor,
        method: str = "autoregressive",
        steps: int = 25,
        temperature: float = 1.0,
        schedule: str = "cosine",
        seed: int = 0,
        prime_actions: torch.Tensor | None = None,
        progress: bool = False,
        anneal_temperature: bool = False,
    ) -> torch.Tensor:
        """prime_frames [B, T0, 3, H, W], actions [B, N] -> generated frames [B, N, 3, H, W]."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.reset(prime_frames, prime_actions)
        if method == "one_go":
            if prime_frames.shape[1] + actions.shape[1] > self.max_frames:
                raise ValueError(
                    f"one_go needs prime + generated frames <= {self.max_frames}; use autoregressive"
                )
            return self.generate(actions, steps, temperature, schedule, generator, anneal_temperature)[0]
        if method != "autoregressive":
            raise ValueError(f"unknown rollout method '{method}'; use 'autoregressive' or 'one_go'")
        frames = []
        for t in tqdm(range(actions.shape[1]), desc="rollout", disable=not progress, leave=False):
            step = self.step(actions[:, t], steps, temperature, schedule, generator, anneal_temperature)
            frames.append(step.frames)
        return torch.stack(frames, dim=1)


def _replace_rows(cache: FrameCache, rows: torch.Tensor, new: FrameCache) -> FrameCache:
    """cache with batch rows `rows` replaced by `new` (R rows); keys/values are [B*S, H, P, hd]."""
    layers = []
    for (k, v), (nk, nv) in zip(cache.layers, new.layers, strict=True):
        k, v = k.clone(), v.clone()
        b = k.shape[0] // (nk.shape[0] // len(rows))  # S tokens per frame: [B*S] rows
        k.view(b, -1, *k.shape[1:])[rows] = nk.view(len(rows), -1, *nk.shape[1:])
        v.view(b, -1, *v.shape[1:])[rows] = nv.view(len(rows), -1, *nv.shape[1:])
        layers.append((k, v))
    return FrameCache(layers)
