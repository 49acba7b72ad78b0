"""Atomic checkpoints: a run killed at any moment leaves its last complete checkpoint readable.

Layout: `<run>/checkpoints/step-000120/` folders, each written to a temporary folder and
renamed into place, and a `latest` file (replaced atomically) naming the newest one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from plusrl.io import atomic_dir, atomic_write_text


def run_folder(output_dir: str, dataset: str, method: str, resume: bool) -> Path:
    """The run's folder (default runs/<dataset>-<method>); never silently reuses a finished or killed run."""
    run_dir = Path(output_dir or f"runs/{Path(dataset).name}-{method}")
    if latest_checkpoint(run_dir) is not None and not resume:
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or pick another --output-dir")
    return run_dir


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


def finished(run_dir: Path, total_steps: int) -> bool:
    """The run's newest checkpoint is its last step: resuming has nothing left to train."""
    latest = latest_checkpoint(run_dir)
    return latest is not None and latest.name == f"step-{total_steps:06d}"


def forget_log_rows_from(path: Path, key: str, start: int) -> None:
    """Drop log rows the resumed run will redo (those written after its checkpoint)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)[key] < start]
        atomic_write_text(path, "".join(f"{line}\n" for line in rows))
