"""AdamW with weight decay only on matrices that multiply activations.

Norm gains, biases and embedding tables are not decayed: shrinking a LayerNorm gain or a codebook
towards zero changes what the layer means rather than regularising it.
"""

from __future__ import annotations

import torch
from torch import nn

NO_DECAY_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Embedding)
if hasattr(nn, "RMSNorm"):
    NO_DECAY_MODULES = (*NO_DECAY_MODULES, nn.RMSNorm)


def split_decay_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decay, no_decay) lists over the trainable parameters; frozen ones (the tokenizer) are left out."""
    no_decay_ids: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            # 1-d tensors are biases and norm gains; embedding-like modules and named embeddings /
            # codebooks / position tables are lookups, not projections.
            is_lookup = isinstance(module, NO_DECAY_MODULES) or any(
                key in name for key in ("embedding", "codebook", "pos_", "position")
            )
            if param.ndim < 2 or is_lookup:
                no_decay_ids.add(id(param))
    decay, no_decay, seen = [], [], set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (no_decay if id(param) in no_decay_ids else decay).append(param)
    return decay, no_decay


def build_optimizer(
    model: nn.Module, *, lr: float, betas: tuple[float, float], weight_decay: float, eps: float
) -> torch.optim.AdamW:
    decay, no_decay = split_decay_parameters(model)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters")
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
