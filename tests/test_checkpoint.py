"""Checkpoints are atomic: a crash while writing never damages the last complete one."""

import pytest

from plusrl.io import atomic_write_text
from plusrl.training.checkpoint import latest_checkpoint, save_checkpoint


def _writer(text):
    def write(folder):
        (folder / "state.txt").write_text(text)

    return write


def test_latest_pointer_and_pruning(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, _writer(f"s{step}"), keep=2)
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-000003" and (latest / "state.txt").read_text() == "s3"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-000002", "step-000003"]


def test_crash_during_write_keeps_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 1, _writer("good"))

    def crashing(folder):
        (folder / "state.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, crashing)
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-000001" and (latest / "state.txt").read_text() == "good"
    assert not (tmp_path / "checkpoints" / "step-000002").exists()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_atomic_write_replaces_whole_file(tmp_path):
    atomic_write_text(tmp_path / "a" / "f.json", "one")
    atomic_write_text(tmp_path / "a" / "f.json", "two")
    assert (tmp_path / "a" / "f.json").read_text() == "two"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.json"]
