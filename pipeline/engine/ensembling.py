"""The best a search found may be more than its best trial: greedy ensemble selection over
the kept trials' validation predictions, judged on validation rows that did not choose it,
and, when it beats the best trial there, logged as one MLflow model (raw input in, the
members' bundles inside), registered, and crowned under the champion rule.

Everything comes from what the trials kept in MLflow (`kept`): their predictions and
bundles. No data is read and no dataset named, so `pipeline ensemble STUDY` rebuilds an
ensemble from a finished study alone, whoever trained its trials and wherever."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import optuna

from pipeline import ensembles, metrics, tracking, trial_record
from pipeline.engine import kept, liveness
from pipeline.metrics import ranking_key

log = logging.getLogger("pipeline")


@dataclass(frozen=True)
class Ensemble:
    """An ensemble chosen from a study's kept trials, beside the best of them."""

    metric: str  # the study's validation metric
    size: int  # greedy picks
    members: dict[int, int]  # trial number -> picks, best trial first
    val: float  # on every validation row, which chose its weights
    held_out: float  # each half of the validation rows, by weights chosen on the other
    test: float  # with the weights chosen on every validation row
    best_trial: int
    best_val: float  # the best trial's, on every validation row
    best_held_out: float  # each half, by the trial best on the other half
    best_test: float
    better: bool  # held out, the ensemble beats the best single trial
    candidates: int  # kept trials it chose from
    model_uri: str | None = None  # registered (only when `better`)
    run_id: str | None = None
    about: dict[int, str] = field(default_factory=dict)  # trial -> which model it is

    @property
    def weights(self) -> dict[int, float]:
        total = sum(self.members.values())
        return {trial: picks / total for trial, picks in self.members.items()}

    def record(self) -> dict:
        return asdict(self)


def from_record(record: dict) -> Ensemble:
    """An `Ensemble` as `trial_record.note_ensemble` kept it (JSON: its keys are strings)."""
    fixed = dict(record)
    fixed["members"] = {int(k): int(v) for k, v in record["members"].items()}
    fixed["about"] = {int(k): v for k, v in record.get("about", {}).items()}
    return Ensemble(**fixed)


def build(
    study: optuna.Study,
    tracker: tracking.Tracker,
    *,
    experiment: str,
    size: int,
    parent_id: str | None = None,
    register: bool = True,
) -> Ensemble | None:
    """Choose an ensemble of `size` picks from `study`'s kept trials; when it beats the
    best of them on validation rows that did not choose it, log it (as a child of
    `parent_id`, if given), register it and offer it the champion alias. Notes what it
    chose in the study. None: fewer than two trials kept predictions and a bundle, or a
    two-objective study (its best is a front, not one trial)."""
    if size < 1 or len(study.directions) > 1:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        pool = _candidates(study, tracker, experiment, Path(tmp))
        if len(pool) < 2:
            log.info("no ensemble: fewer than two trials kept their predictions and model")
            return None
        chosen = _choose(study, pool, size)
        if chosen.better and register:
            chosen = _register(chosen, pool, tracker, study, parent_id, Path(tmp), experiment)
    trial_record.note_ensemble(study, chosen.record())
    return chosen


def register(
    chosen: Ensemble, study: optuna.Study, tracker: tracking.Tracker, *, experiment: str
) -> Ensemble:
    """Log and register `chosen` (of `study`'s kept trials) whether or not it won."""
    with tempfile.TemporaryDirectory() as tmp:
        pool = _candidates(study, tracker, experiment, Path(tmp))
        return _register(chosen, pool, tracker, study, None, Path(tmp), experiment)


@dataclass
class _Candidate:
    trial: int
    run_id: str
    value: float
    predictions: dict


def _candidates(study, tracker, experiment: str, folder: Path) -> list[_Candidate]:
    """The completed trials whose bundle is kept and whose predictions are there, best
    first by the one ranking rule, their validation rows alike."""
    minimize = trial_record.minimizes(study)
    where = f"tags.{tracking.KEPT_MODEL} = 'true'"
    runs = {
        int(r["tags"][tracking.TRIAL_NUMBER]): r["run_id"]
        for r in tracker.runs(experiment, where)
        if r["tags"].get(tracking.STUDY) == study.study_name
    }
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ranked = sorted(done, key=lambda t: ranking_key(t.values[0], t.number, minimize))
    pool: list[_Candidate] = []
    for trial in ranked:
        run_id = runs.get(trial.number)
        if run_id is None or trial_record.read(trial).run_id != run_id:
            continue
        found = kept.kept_predictions(tracker, run_id, folder / str(trial.number))
        if found is None or "val_pred" not in found:
            continue
        if pool and not np.array_equal(found["val_true"], pool[0].predictions["val_true"]):
            continue  # other validation rows (another split): not comparable
        pool.append(_Candidate(trial.number, run_id, trial.values[0], found))
    return pool


def _choose(study, pool: list[_Candidate], size: int) -> Ensemble:
    first = pool[0].predictions
    task, y = str(first["task"]), first["val_true"]
    judged = ensembles.judge([c.predictions["val_pred"] for c in pool], y, task, size)
    members = {c.trial: int(n) for c, n in zip(pool, judged.counts, strict=True) if n}
    only_best = [1] + [0] * (len(pool) - 1)
    return Ensemble(
        metric=trial_record.study_metric(study),
        size=size,
        members=members,
        val=judged.value,
        held_out=judged.held_out,
        test=_test_value(pool, judged.counts, task),
        best_trial=pool[0].trial,
        best_val=ensembles.metric(first["val_pred"], y, task),
        best_held_out=judged.single_held_out,
        best_test=_test_value(pool, only_best, task),
        better=judged.better,
        candidates=len(pool),
        about={c.trial: str(c.predictions.get("member", "model")) for c in pool},
    )


def _test_value(pool: list[_Candidate], weights, task: str) -> float:
    """The test metric of the candidates averaged with `weights` (for reports only)."""
    used = [(c, w) for c, w in zip(pool, weights, strict=True) if w]
    if any("test_pred" not in c.predictions for c, _ in used):
        return float("nan")
    pred = ensembles.combine([c.predictions["test_pred"] for c, _ in used], [w for _, w in used])
    return ensembles.metric(pred, used[0][0].predictions["test_true"], task)


def _register(
    chosen: Ensemble,
    pool: list[_Candidate],
    tracker,
    study,
    parent_id,
    folder: Path,
    experiment: str,
) -> Ensemble:
    """Log the ensemble as one model on a run of its own, register it, crown it if it
    beats the champion. A failure leaves the study as it was: one warning."""
    from pipeline import inference
    from pipeline.tracking import models  # deferred: MLflow's model API costs seconds to import

    by_trial = {c.trial: c for c in pool}
    run_id = None
    try:
        members = []
        for trial, picks in chosen.members.items():
            bundle = kept.kept_model(tracker, by_trial[trial].run_id, folder / f"bundle-{trial}")
            if bundle is None or not (bundle / inference.SETTINGS).is_file():
                log.warning("no ensemble model: trial %d kept no bundle", trial)
                return chosen
            about = {"trial": trial, "model": chosen.about.get(trial, "model")}
            members.append((bundle, picks, about))
        run_id = _start_run(chosen, tracker, study, parent_id, experiment)
        ensemble = inference.save_ensemble(folder / "ensemble", members)
        value = (chosen.metric, chosen.val, trial_record.minimizes(study))
        uri = models.log_model(tracker.uri, run_id, ensemble, None, study.study_name, value=value)
        tracker.set_tags(run_id, {tracking.BEST_MODEL_URI: uri} if uri else {})
        tracker.end_run(run_id)
        if parent_id:
            tracker.set_tags(parent_id, {"ensemble_model_uri": uri})
        log.info("ensemble of %d trials registered as %s", len(members), uri)
        return _with(chosen, model_uri=uri, run_id=run_id)
    except BaseException as error:
        if run_id is not None:
            with contextlib.suppress(Exception):
                status = tracking.FAILED if isinstance(error, Exception) else tracking.KILLED
                tracker.fail(run_id, error, status)
        if not isinstance(error, Exception):
            raise
        log.warning("the ensemble was not logged to MLflow: %s", error)
        return chosen


def _start_run(chosen: Ensemble, tracker, study, parent_id, experiment: str) -> str:
    """The ensemble's run, in the study's experiment: tagged with its study, its members
    and where it runs (a process killed meanwhile leaves it to the next sweep)."""
    experiment_id = tracker.experiment(experiment)
    members = ",".join(f"{trial}:{picks}" for trial, picks in chosen.members.items())
    tags = {
        tracking.STUDY: study.study_name,
        tracking.KIND: tracking.ENSEMBLE,
        tracking.ENSEMBLE_MEMBERS: members,
        **liveness.identity(),
    }
    run_id = tracker.start_run(experiment_id, "ensemble", parent_id, tags)
    tracker.log_params(run_id, {"ensemble_size": chosen.size, "candidates": chosen.candidates})
    test = metrics.test_metric(chosen.metric)
    figures = {chosen.metric: chosen.val, f"{chosen.metric}_held_out": chosen.held_out}
    figures |= {"members": len(chosen.members)}
    figures |= {test: chosen.test} if np.isfinite(chosen.test) else {}
    tracker.log_metrics(run_id, values=figures)
    return run_id


def _with(chosen: Ensemble, **changes) -> Ensemble:
    return replace(chosen, **changes)
