"""Conversions between stored frames (uint8, channels last) and model frames (float, channels first).

Frames leave the DataLoader as uint8 so workers, pinned memory and the host-to-device copy move a
quarter of the bytes; the float conversion happens here, on the device.
"""

from __future__ import annotations

import torch


def frames_to_model(
    frames: torch.Tensor, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> `dtype` [B, T, 3, H, W] in [0, 1], converted on `device` (default: where it is)."""
    if frames.dtype != torch.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames_to_model expects uint8 [B, T, H, W, 3], got {frames.dtype} {list(frames.shape)}"
        )
    if device is not None:
        frames = frames.to(device, non_blocking=True)  # copy the uint8 bytes, not 4x as many floats
    frames = frames.permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W]
    return frames.to(dtype).div_(255.0).contiguous()


def frames_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float [B, T, 3, H, W] in [0, 1] -> uint8 [B, T, H, W, 3] (rounded, clamped): for gifs and the store."""
    if not frames.is_floating_point() or frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(
            f"frames_to_uint8 expects float [B, T, 3, H, W], got {frames.dtype} {list(frames.shape)}"
        )
    scaled = frames.detach().float().mul(255.0).round_().clamp_(0, 255)
    return scaled.to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous()  # [B, T, H, W, 3]
