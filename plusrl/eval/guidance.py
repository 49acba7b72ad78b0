"""Guidance: let the user's text outweigh the population prior, by as much as validation allows.

A reward model trained on many users learns what they all reward alike (every Pets user ranks
birds first) beside what depends on each user's text. A user whose text goes against that
prior (a Pets-OOD user who prefers rabbits to birds) is then overruled by it. Guidance scores

    r_w(s | c) = r̄(s) + w · (r(s | c) − r̄(s)),    r̄(s) = mean of r(s | c') over training users c'

(`guided_reward`). w is calibrated once per run, after training, on validation sets where the
prior is right or absent: the w of GRID with the best accuracy over those sets, the largest of
ties (or of those within `data.calibration_tolerance` of the best). So the user's text gains
weight as far as validation users gain from it, where the prior is right as much as where it is
absent.
The weight, the training users' texts and the evidence are kept in the run's `guidance.json`,
and every later score of the run's reward model (eval, API, service) uses them.
"""

from __future__ import annotations

from pathlib import Path

from plusrl.config import ConfigError
from plusrl.data.registry import load_split
from plusrl.data.schema import Record
from plusrl.eval.accuracy import score_responses
from plusrl.methods import method_spec
from plusrl.models.conditioning import build_conditionings
from plusrl.progress import announce
from plusrl.run_dir import Guidance, RunDir
from plusrl.training.losses import guided_reward, preference_accuracy

GRID = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 5.0)
REFERENCE_USERS = 16
"""Training users whose conditioning texts make r̄ (distinct texts are kept once): scoring costs
one extra reward-model pass per distinct text."""


def calibrated_weight(validation: dict[str, dict[float, float]], tolerance: float = 0.0) -> float:
    """The largest w of GRID whose accuracy averaged over the validation sets is within
    `tolerance` of the best: {"agreed": {1: 1.0, 1.25: 0.99, 1.5: 0.98}, "new": {1: 0.985,
    1.25: 1.0, 1.5: 1.0}} → 1.25 (two pairs lost where the prior is right, three won where it
    is absent); with tolerance 0.01, 1.5 (mean 0.99, within a point of 0.995)."""
    mean = {w: round(sum(accuracy[w] for accuracy in validation.values()) / len(validation), 9) for w in GRID}
    best = max(mean.values())
    return max(w for w in GRID if mean[w] >= round(best - tolerance, 9))


def accuracy_by_weight(model, conditionings: list[str], prompts: list[str], chosen: list[str], rejected: list[str],
                       population: list[str], weights=GRID) -> dict[float, float]:
    """Share of pairs ranked right by r̄ + w·(r − r̄) at each w; the model must score unguided."""
    responses, prompts = chosen + rejected, prompts * 2
    own = score_responses(model, conditionings * 2, prompts, responses)
    mean = model.population_reward(population, prompts, responses)
    n = len(chosen)
    return {w: preference_accuracy(*guided_reward(own, mean, w).split(n)).item() for w in weights}


class RunConditionings:
    """The conditioning text a run's method gives each record (its summarizer writes summaries)."""

    def __init__(self, run: RunDir):
        self.cfg = run.config()
        spec = method_spec(self.cfg.method)
        if spec.conditioning not in ("oracle", "context", "summary"):
            raise ConfigError(f"guidance weighs a user's conditioning text; method {self.cfg.method!r} reads none")
        self.summarizer = run.summarizer() if spec.has_summarizer else None

    def __call__(self, records: list[Record], desc: str = "summarizing") -> list[str]:
        prompts = self.cfg.data.prompts
        summaries = self.summarizer.summarize(records, prompts, desc=desc) if self.summarizer is not None else None
        return build_conditionings(self.cfg.method, records, prompts, summaries, self.cfg.reward_model.summary_template)

    def population(self) -> list[str]:
        """The distinct texts of the first REFERENCE_USERS training users."""
        train = load_split(self.cfg.data.dataset, "train", self.cfg.data.context_type)[:REFERENCE_USERS]
        return list(dict.fromkeys(self(train, desc="summarizing training users for r̄")))


def pair_accuracy_by_weight(model, conditionings: RunConditionings, spec: str, population: list[str],
                            weights=GRID, max_records: int = 0) -> dict[float, float]:
    """accuracy_by_weight on a dataset split "NAME@SPLIT" (default split: validation), on its first
    `max_records` records (0: all)."""
    dataset, _, split = spec.partition("@")
    records = load_split(dataset, split or "validation", conditionings.cfg.data.context_type)
    records = records[:max_records] if max_records else records
    announce(f"calibrating the guidance weight on {spec}: {len(records)} pairs at w = {', '.join(map(str, weights))}")
    return accuracy_by_weight(model, conditionings(records, desc=f"summarizing {spec}"), [r.prompt for r in records],
                              [r.chosen for r in records], [r.rejected for r in records], population, weights)


def is_calibrated(run: RunDir) -> bool:
    """The run has a guidance file for its newest checkpoint."""
    return run.guidance_file.is_file() and Guidance.load(run.guidance_file).checkpoint == run.checkpoint().name


def calibrate_run(run_dir: str | Path, datasets: list[str] | None = None, tolerance: float | None = None) -> Guidance:
    """Choose w for a trained run on `datasets` ("NAME@SPLIT"; default: the run's
    `data.calibration_datasets`; the first `data.max_eval_records` of each, as evaluation reads)
    within `tolerance` of the best (default: the run's `data.calibration_tolerance`) and write it
    to the run's guidance.json."""
    run = RunDir(run_dir)
    conditionings = RunConditionings(run)
    datasets = datasets or conditionings.cfg.data.calibration_datasets
    tolerance = conditionings.cfg.data.calibration_tolerance if tolerance is None else tolerance
    if not 0 <= tolerance < 1:
        raise ConfigError(f"the calibration tolerance is a fraction of pairs in [0, 1), not {tolerance}")
    if not datasets:
        raise ConfigError("name the validation sets to calibrate on (--dataset NAME@SPLIT or data.calibration_datasets)")
    model = run.reward_model().eval()
    model.use_guidance(1.0, [])  # calibrate from the model as trained, whatever an earlier calibration chose
    population = conditionings.population()
    validation = {spec: pair_accuracy_by_weight(model, conditionings, spec, population,
                                                max_records=conditionings.cfg.data.max_eval_records) for spec in datasets}
    guidance = Guidance(calibrated_weight(validation, tolerance), population,
                        {spec: {str(w): acc for w, acc in accs.items()} for spec, accs in validation.items()},
                        run.checkpoint().name, tolerance)
    guidance.save(run.guidance_file)
    return guidance
