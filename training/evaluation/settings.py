"""The protocol's knobs (a subset of the `eval:` config) as one typed, validated object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from common.errors import UserError
from data.actions import ACTION_VOCABULARY, action_id

INFERENCE_METHODS = ("one_go", "autoregressive")


@dataclass(frozen=True)
class EvalSettings:
    action_to_take: int | str = -1  # -1 replication; otherwise one action id or vocabulary name (control)
    inference_method: str = "one_go"
    num_first_frames: int = 2
    sample_num_frames: int = 10
    inference_steps: int = 25
    temperature: float = 1.0
    anneal_temperature: bool = False  # token temperature falls to 0 over the steps (upstream's)
    schedule: str = "cosine"
    num_sequences: int = 120
    seed: int = 0
    delta_psnr_frame: int = 4
    num_gifs: int = 4

    @classmethod
    def from_config(cls, node: Any) -> EvalSettings:
        """Read this dataclass's fields from an `eval:` node (DictConfig or dict); other keys are run.py's."""
        values = {f.name: node[f.name] for f in fields(cls) if f.name in node}
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.inference_method not in INFERENCE_METHODS:
            raise UserError(
                f"eval.inference_method={self.inference_method} is unknown; use one of {', '.join(INFERENCE_METHODS)}"
            )
        for name in (
            "num_first_frames",
            "sample_num_frames",
            "inference_steps",
            "num_sequences",
            "delta_psnr_frame",
        ):
            if int(getattr(self, name)) < 1:
                raise UserError(f"eval.{name}={getattr(self, name)} must be >= 1")

    @property
    def is_control(self) -> bool:
        return str(self.action_to_take) != "-1"

    @property
    def num_frames(self) -> int:
        """Window length read from the dataset: prime frames plus the frames to predict."""
        return self.num_first_frames + self.sample_num_frames

    def control_action(self, num_actions: int, is_action_guided: bool) -> int:
        """The fixed action's id: a vocabulary name or id (GenieRedux-G), a latent code id (GenieRedux)."""
        value = str(self.action_to_take)
        if value.lstrip("-").isdigit():
            index = int(value)
        elif is_action_guided:
            try:
                index = action_id(value)
            except ValueError:
                raise UserError(
                    f"eval.action_to_take={value} is not an action; use an id or one of {', '.join(ACTION_VOCABULARY)}"
                ) from None
        else:
            raise UserError(
                f"eval.action_to_take={value}: GenieRedux's actions are latent codes; use an id 0..{num_actions - 1}"
            )
        if not 0 <= index < num_actions:
            raise UserError(
                f"eval.action_to_take={value} is out of range; use -1 or an id 0..{num_actions - 1}"
            )
        return index

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
