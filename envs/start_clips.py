"""Start clips for a world-model session: real frames from an episode store, or one uploaded image.

A session is primed with `num_prime_frames` consecutive real frames and the actions taken between
them (GenieRedux-G needs those), cut from one episode at one frame. Game, episode and frame are
chosen by the caller or drawn from a numpy Generator, so a seed fixes the start.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from data.actions import ACTION_VOCABULARY, FIRST_VOCABULARY_SIZE
from data.episode_store import EpisodeRecord, EpisodeStore
from envs.frames import square_and_resize


@dataclass(frozen=True)
class StartClip:
    frames: np.ndarray  # uint8 [T0, S, S, 3] at the model's size S
    actions: np.ndarray  # int64 [T0-1] ACTION_VOCABULARY ids taken between the frames
    game: str  # env name, or "upload"
    episode_id: str  # "" for an uploaded image
    frame: int  # index of the first prime frame in the episode


def image_clip(image: np.ndarray, image_size: int) -> StartClip:
    """A one-frame start from any uint8 [H, W, 3] image: padded to a square, area-resized to the model."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"a start image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    frame = square_and_resize(image, image_size)[None]  # [1, S, S, 3]
    return StartClip(frame, np.zeros(0, dtype=np.int64), "upload", "", 0)


class StartPicker:
    """Start clips of `num_prime_frames` frames from the episodes of a store, per game."""

    def __init__(self, store_dpath: str | Path, image_size: int, num_prime_frames: int) -> None:
        if num_prime_frames < 1:
            raise ValueError(f"num_prime_frames must be >= 1, got {num_prime_frames}")
        self.store = EpisodeStore(store_dpath)
        self.image_size, self.num_prime_frames = int(image_size), int(num_prime_frames)
        self.episodes: dict[str, list[EpisodeRecord]] = {}
        for record in self.store.episodes:  # sorted by episode id: a fixed order for seeded draws
            if (
                record.num_frames >= num_prime_frames
                and record.episode_id not in self.store.corrupt_episode_ids
            ):
                self.episodes.setdefault(record.env_name, []).append(record)
        if not self.episodes:
            raise UserError(
                f"the episode store at {store_dpath} has no episode of {num_prime_frames}+ frames; "
                "generate data first (python run.py generate ...)"
            )
        self.games: list[str] = sorted(self.episodes)

    def check_game(self, game: str) -> str:
        if game not in self.episodes:
            close = difflib.get_close_matches(game, self.games, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"choose one of {', '.join(self.games)}"
            raise UserError(f"game '{game}' is not in the store at {self.store.root_dpath}; {hint}")
        return game

    def action_names(self, game: str | None = None) -> tuple[str, ...]:
        """The game's own actions (recorded by the generator), in vocabulary order; all games: their union.

        Episodes recorded without that note (synthetic stores, stores older than the gymnasium names) fall
        back to the vocabulary those games used: its first FIRST_VOCABULARY_SIZE names.
        """
        games = [self.check_game(game)] if game is not None else self.games
        names: set[str] = set()
        for name in games:
            info = self.store.header(self.episodes[name][0].episode_id).info
            names |= set(info.get("env_actions") or ACTION_VOCABULARY[:FIRST_VOCABULARY_SIZE])
        return tuple(a for a in ACTION_VOCABULARY if a in names)

    def pick(
        self,
        rng: np.random.Generator,
        game: str | None = None,
        episode_id: str | None = None,
        frame: int | None = None,
    ) -> StartClip:
        """The clip at (game, episode, frame); each left None is drawn from `rng` (frame: uniformly)."""
        if episode_id is not None:
            record = self._record(episode_id)
            if game is not None and record.env_name != game:
                raise UserError(f"episode {episode_id} belongs to {record.env_name}, not {game}")
        else:
            game = self.check_game(game) if game is not None else self.games[rng.integers(len(self.games))]
            candidates = self.episodes[game]
            record = candidates[rng.integers(len(candidates))]
        last_start = record.num_frames - self.num_prime_frames
        if frame is None:
            frame = int(rng.integers(last_start + 1))
        if not 0 <= frame <= last_start:
            raise UserError(
                f"start frame {frame} is outside episode {record.episode_id}: choose 0..{last_start} "
                f"({record.num_frames} frames, {self.num_prime_frames} prime frames)"
            )
        stop = frame + self.num_prime_frames
        frames = self.store.read_frames(record.episode_id, frame, stop)  # [T0, H, W, 3]
        if frames.shape[1] != self.image_size:
            frames = np.stack([square_and_resize(f, self.image_size) for f in frames])
        actions = self._vocabulary_ids(record, self.store.read_actions(record.episode_id, frame, stop - 1))
        return StartClip(frames, actions, record.env_name, record.episode_id, frame)

    def _record(self, episode_id: str) -> EpisodeRecord:
        for records in self.episodes.values():
            for record in records:
                if record.episode_id == episode_id:
                    return record
        raise UserError(f"episode '{episode_id}' is not in the store at {self.store.root_dpath}")

    @staticmethod
    def _vocabulary_ids(record: EpisodeRecord, actions: np.ndarray) -> np.ndarray:
        """Episode action ids -> ACTION_VOCABULARY ids (an older store may have its own vocabulary)."""
        if record.action_names == ACTION_VOCABULARY:
            return actions.astype(np.int64)
        lookup = np.array([ACTION_VOCABULARY.index(name) for name in record.action_names], dtype=np.int64)
        return lookup[actions]
