"""Progress off a terminal (CI logs, pipes): plain lines, never carriage-return redraws."""

import io
import time

from plusrl import progress as progress_module
from plusrl.progress import progress


def log_to_a_file(monkeypatch, log_every_s: float, stream: io.StringIO | None = None) -> io.StringIO:
    """stderr as a log file (not a terminal), TQDM_DISABLE unset. Called in the test body: pytest's
    own capture replaces sys.stderr between a fixture's setup and the test."""
    stream = io.StringIO() if stream is None else stream
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    monkeypatch.setattr(progress_module, "LOG_EVERY_S", log_every_s)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    return stream


def test_a_bar_in_a_log_is_written_as_lines(monkeypatch):
    log = log_to_a_file(monkeypatch, 0.0)
    for _ in progress(range(3), desc="summarizing pets", unit="batch"):
        time.sleep(0.01)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines
    assert all(line.startswith("summarizing pets:") for line in lines)
    assert "3/3" in lines[-1] and "100%" in lines[-1]
    assert len(lines) <= 8  # a line per update at most, no redraws between them


def test_tqdm_disable_silences_it_even_where_a_caller_enables_it(monkeypatch):
    log = log_to_a_file(monkeypatch, 0.0)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert list(progress(range(3), desc="quiet", disable=False)) == [0, 1, 2]
    assert log.getvalue() == ""


def test_a_long_item_keeps_writing_lines_while_it_runs(monkeypatch):
    """One slow iteration (minutes on a slow CPU) still shows the clock moving in a log."""
    log = log_to_a_file(monkeypatch, 0.05)
    for _ in progress(range(1), desc="plus", unit="iteration"):
        time.sleep(0.5)
    lines = log.getvalue().splitlines()
    assert len([line for line in lines if "0/1" in line]) >= 3
    assert "1/1" in lines[-1]


class _TimedLines(io.StringIO):
    """A log that notes when each line arrives."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def write(self, text: str) -> int:
        self.times += [time.monotonic()] * text.count("\n")
        return super().write(text)


def test_an_update_just_after_a_beat_does_not_double_the_silence(monkeypatch):
    """A line from an update lands just after the heartbeat's line; the next beat still comes one
    interval after it, not two (a log must never look stalled for twice the interval)."""
    every = 0.3
    log = log_to_a_file(monkeypatch, every, _TimedLines())
    for seconds in progress([every * 1.1, every * 5], desc="plus", unit="iteration"):
        time.sleep(seconds)
    gaps = [later - earlier for earlier, later in zip(log.times, log.times[1:])]
    assert len(gaps) >= 5 and max(gaps) < every * 1.5


def test_a_delayed_bar_shows_only_work_that_outlasts_its_delay(monkeypatch):
    """One user's summary in a request stays quiet; the same call on a slow CPU still shows its clock."""
    log = log_to_a_file(monkeypatch, 0.1)
    for _ in progress(range(1), desc="quick", delay=0.5):
        time.sleep(0.05)
    assert log.getvalue() == ""
    for _ in progress(range(1), desc="slow", delay=0.2):
        time.sleep(0.8)
    lines = log.getvalue().splitlines()
    assert len([line for line in lines if "0/1" in line]) >= 2 and "1/1" in lines[-1]
