"""Output paths checked before any long work starts, so a typo costs a second, not a run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class UnwritableOutputError(ValueError):
    """An output path whose directory cannot be created or written."""


def ensure_writable(path: str | Path, option: str = "--output") -> Path:
    """Create `path`'s directory if needed and prove a file can be written there; else one clear error."""
    path = Path(path)
    if path.is_dir():
        raise UnwritableOutputError(f"{option} {path} is a directory; give a file path")
    nearest = next(folder for folder in path.absolute().parents if folder.exists())
    if not nearest.is_dir():
        raise UnwritableOutputError(f"cannot write {option} {path} ({nearest} is not a directory)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise UnwritableOutputError(
            f"cannot write {option} {path} ({error.strerror or error}); choose a writable path"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UnwritableOutputError(
            f"cannot write {option} {path} (permission denied); choose a writable path"
        )
    return path
