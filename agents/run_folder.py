"""Which run folder a command means: one convention for every agent (CoinRun task agent, AutoExplore).

`run_dpath=` names a folder; `common.resume_id=N` names `<runs_dpath>/run_NNN` (upstream's way); with
neither, training makes the next numbered folder under `runs_dpath`.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError


def next_run_dpath(runs_dpath: str | Path) -> Path:
    """<runs_dpath>/run_NNN with NNN one past the highest existing number."""
    parent = Path(runs_dpath)
    numbers = [int(p.name[4:]) for p in parent.glob("run_[0-9][0-9][0-9]*") if p.name[4:].isdigit()]
    return parent / f"run_{max(numbers, default=0) + 1:03d}"


def named_run_dpath(run_dpath: str | None, runs_dpath: str | Path, resume_id: int | None) -> Path | None:
    """The run folder that run_dpath or resume_id names (resume_id's must exist); None: neither."""
    if run_dpath and resume_id is not None:
        raise UserError("give run_dpath or common.resume_id, not both")
    if resume_id is None:
        return Path(run_dpath) if run_dpath else None
    dpath = Path(runs_dpath) / f"run_{int(resume_id):03d}"
    if not dpath.is_dir():
        raise UserError(f"common.resume_id={resume_id}: no run folder {dpath}")
    return dpath
