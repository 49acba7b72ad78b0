"""Summary generation in a child process at the lowest CPU priority.

A summary takes the summarizer tens of seconds on a CPU; scoring takes tens of milliseconds.
Run in the server's process, a generation holds the cores that scoring needs (threads of one
process share one priority), so every user's scores wait on one user's summary. In its own
process at nice 19 with one torch thread, the generation gets only the CPU that scoring leaves
idle: the kernel's scheduler gives a nice-0 process ~70× the share of a nice-19 one.

The child starts on the first generation (the service's other endpoints never pay for it),
loads the summarizer once, and is started again if it dies (for example killed for memory). It
leaves when the server does, even a server killed outright.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

log = logging.getLogger(__name__)

GENERATION_NICENESS = 19
GENERATION_THREADS = 1  # leaves the other cores to scoring even where nice is not honoured

_summarizer = None  # the child's model, loaded once by _load


class SummarizerUnavailable(RuntimeError):
    """The child process died or could not load the summarizer."""


def _exit_with(parent_pid: int) -> None:
    """A server killed outright (SIGKILL, the OOM killer) shuts nothing down, and its child would
    live on holding a model's memory: the child watches its parent and leaves when it is gone."""
    while os.getppid() == parent_pid:
        time.sleep(1)
    os._exit(0)


def _load(summarizer_dir: str | None, niceness: int, threads: int) -> None:
    import torch

    from plusrl.models.summarizer import Summarizer, SummarizerConfig

    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    os.nice(niceness)
    torch.set_num_threads(threads)
    global _summarizer
    _summarizer = Summarizer.load(summarizer_dir) if summarizer_dir else Summarizer(SummarizerConfig())


def _summarize(user_id: str, items: list[dict], dataset: str) -> str:
    from plusrl.data.schema import UserContext

    user = UserContext.model_validate({"user_id": user_id, "context": items})
    return _summarizer.summarize([user], dataset)[0]


class SummaryWorker:
    """One low-priority child process that writes summaries, one at a time."""

    def __init__(self, summarizer_dir: Path | None, dataset: str, niceness: int = GENERATION_NICENESS,
                 threads: int = GENERATION_THREADS):
        self._start_args = (str(summarizer_dir) if summarizer_dir else None, niceness, threads)
        self.dataset = dataset
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _running_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the server process holds threads and a torch runtime
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_load, initargs=self._start_args)
            return self._pool

    async def summarize(self, user_id: str, items: list[dict]) -> str:
        pool = self._running_pool()
        try:
            return await asyncio.wrap_future(pool.submit(_summarize, user_id, items, self.dataset))
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # the next request starts a fresh child
                    self._pool = None
            log.error("the summary process died or failed to load the summarizer; it restarts on the next request")
            raise SummarizerUnavailable("the summarizer stopped while writing; retry in a minute") from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
