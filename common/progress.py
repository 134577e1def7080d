"""Progress bars that behave in a terminal and in a log file.

In a terminal the bar redraws ~10 times a second; when stderr is a file or a CI log, redrawing would
write thousands of carriage-return updates, so the bar refreshes every 30 s instead.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

LOG_REFRESH_SECONDS = 30.0


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    """`tqdm(...)` with a refresh interval suited to where stderr goes."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_REFRESH_SECONDS)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(*args, **kwargs)
