"""Building blocks shared by the tokenizer, the latent action model and the dynamics model."""

from models.components.attention import Attention
from models.components.position import add_positions
from models.components.quantizer import QuantizerOutput, VectorQuantizer
from models.components.st_transformer import FrameCache, STBlock, STTransformer

__all__ = [
    "Attention",
    "FrameCache",
    "QuantizerOutput",
    "STBlock",
    "STTransformer",
    "VectorQuantizer",
    "add_positions",
]
