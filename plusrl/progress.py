"""Progress for every step a user waits on: a tqdm bar on a terminal, plain lines in a log.

tqdm redraws one line with carriage returns, which a CI log or a file keeps as one unreadable
run-on line (or as thousands). Off a terminal, the same bar is written as a fresh line at most
every LOG_EVERY_S seconds, and once when it ends. TQDM_DISABLE=1 silences both.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

LOG_EVERY_S = 15.0
"""Off a terminal: seconds between two progress lines of one bar (a CI log stays short and never
stays silent for long)."""

SHOW_AFTER_S = 5.0
"""`delay` for work that is often over in a moment (one user's summary in a request) and sometimes
takes a minute (a batch on a slow CPU): its bar shows only once it has run this long."""


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


class _Bar(tqdm):
    """tqdm that also redraws itself every `heartbeat_s` while one item takes long (a PLUS iteration
    on a slow CPU, a model loading): the elapsed time keeps moving, so a slow step never reads as a hang."""

    def __init__(self, *args, heartbeat_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self._beat_lock, self._stopped = threading.Lock(), threading.Event()
        if not self.disable and heartbeat_s > 0:  # (a zero interval would redraw in a busy loop)
            threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True).start()

    def _beat(self, every: float) -> None:
        # Wake `every` after the last line, whether an update or this thread wrote it (and never
        # before tqdm's `delay`, so a bar that ends sooner stays unseen): waking on a fixed clock
        # instead would skip a beat after an update that printed just after one, and leave the log
        # silent for up to twice `every`.
        last_line = self._time() + max(self.delay - every, 0.0)
        while not self._stopped.wait(max(last_line + every - self._time(), 0.0)):
            with self._beat_lock:
                if self._stopped.is_set():
                    return
                last_line = max(last_line, self.last_print_t)
                if self._time() - last_line >= every:
                    self.refresh()
                    last_line = self._time()

    def close(self) -> None:
        if hasattr(self, "_stopped"):  # (tqdm closes from __del__ too, also after a failed __init__)
            with self._beat_lock:
                self._stopped.set()
        super().close()


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None, unit: str = "it",
             leave: bool = False, **kwargs) -> tqdm:
    """tqdm(iterable, desc=…) that writes readable lines when stderr is not a terminal."""
    kwargs["disable"] = kwargs.get("disable", False) or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    if sys.stderr.isatty():
        return _Bar(iterable, desc=desc, total=total, unit=unit, leave=leave, heartbeat_s=1.0, **kwargs)
    return _Bar(iterable, desc=desc, total=total, unit=unit, leave=True, file=_Lines(sys.stderr),
                mininterval=LOG_EVERY_S, maxinterval=LOG_EVERY_S, ascii=True, ncols=100, heartbeat_s=LOG_EVERY_S,
                **kwargs)


def announce(message: str) -> None:
    """One line before a single long step that has no parts to count (e.g. converting a model)."""
    print(message, file=sys.stderr, flush=True)
