"""Atomic checkpoints: a run killed at any moment leaves its last complete checkpoint readable.

Layout: `<run>/checkpoints/step-000120/` folders, each written to a temporary folder and
renamed into place, and a `latest` file (replaced atomically) naming the newest one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from plusrl.io import atomic_dir, atomic_write_text


def save_checkpoint(run_dir: Path, step: int, write: Callable[[Path], None], keep: int = 2) -> Path:
    root = run_dir / "checkpoints"
    target = root / f"step-{step:06d}"
    atomic_dir(target, write)
    atomic_write_text(root / "latest", target.name)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    return folder if folder.is_dir() else None
