"""YAML files that do not parse: one line saying which file, where and what, instead of PyYAML's
multi-line message and traceback. Used for configs and for checkpoints' config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# What reading a broken YAML file raises: a syntax error, a control character such as NUL (ReaderError,
# a YAMLError) or bytes that are not UTF-8 (yaml and pathlib decode as UTF-8).
YAML_READ_ERRORS = (yaml.YAMLError, UnicodeDecodeError)


class YamlFileError(ValueError):
    """A YAML file that cannot be read; the message is one line naming the file and the place."""


def yaml_problem(error: Exception) -> str:
    """'line 2, column 4: mapping values are not allowed here' (or the position for a bad character)."""
    if isinstance(error, UnicodeDecodeError):
        return f"byte {error.object[error.start]:#04x} at position {error.start} is not UTF-8 text"
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        what = error.problem or error.context or "syntax error"
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}" if mark else what
    if isinstance(error, yaml.reader.ReaderError):
        character = error.character if isinstance(error.character, int) else error.character[0]
        return f"position {error.position}: {error.reason} (character #x{character:04x})"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def yaml_error_fpath(error: Exception) -> str | None:
    """The file PyYAML names in `error`, if it names one (a stream read from a file does)."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        name = mark.name if mark else None
    else:
        name = getattr(error, "name", None)
    return name if isinstance(name, str) and not name.startswith("<") else None


def read_yaml_file(fpath: str | Path) -> Any:
    """`yaml.safe_load` of the file; YamlFileError (one line) when it is not YAML."""
    fpath = Path(fpath)
    try:
        return yaml.safe_load(fpath.read_text(encoding="utf-8"))
    except YAML_READ_ERRORS as error:
        raise YamlFileError(f"{fpath} is not valid YAML ({yaml_problem(error)})") from None
