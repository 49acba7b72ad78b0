"""Progress for every step a user waits on: a tqdm bar on a terminal, plain lines in a log.

tqdm redraws one line with carriage returns, which a CI log or a file keeps as one unreadable
run-on line (or as thousands). Off a terminal, the same bar is written as a fresh line at most
every LOG_EVERY_S seconds, and once when it ends. TQDM_DISABLE=1 silences both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

LOG_EVERY_S = 15.0
"""Off a terminal: seconds between two progress lines of one bar (a CI log stays short and never
stays silent for long)."""


class _Lines:
    """A stream for tqdm that turns each redraw into one line of its own."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None, unit: str = "it",
             leave: bool = False, **kwargs) -> tqdm:
    """tqdm(iterable, desc=…) that writes readable lines when stderr is not a terminal."""
    kwargs["disable"] = kwargs.get("disable", False) or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    if sys.stderr.isatty():
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, **kwargs)
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=True, file=_Lines(sys.stderr),
                mininterval=LOG_EVERY_S, maxinterval=LOG_EVERY_S, ascii=True, ncols=100, **kwargs)


def announce(message: str) -> None:
    """One line before a single long step that has no parts to count (e.g. converting a model)."""
    print(message, file=sys.stderr, flush=True)
