"""`pipeline train`: one fixed configuration trained once, logged as one MLflow run with the
same record as a trial, plus the model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline import backends, datasets, hyperparameters, params, stopping, tracking
from pipeline.engine.plan import TrainPlan
from pipeline.engine.records import (
    figure_tags,
    final_metrics,
    model_summary,
    write_trial_files,
)
from pipeline.errors import Interrupted, TrainingDiverged  # noqa: F401  (raised by train_once)


def train_once(plan: TrainPlan):
    """Train the plan's configuration; returns the MLflow run id and the training result.
    The run is closed whatever happens: FAILED for an error (a diverged training raises
    `TrainingDiverged` after closing it), KILLED for a signal (then `Interrupted`)."""
    from pipeline.training import train_and_evaluate

    backends.start(plan.backend, quiet=not plan.verbose)

    data = datasets.load_dataset(plan.dataset, params.data_options(plan.params))
    stopping.check()  # a signal while the data loaded: nothing written, nothing to close
    tracker = tracking.Tracker(plan.tracking)
    experiment_id = tracker.experiment(plan.dataset.name)
    tags = {tracking.KIND: "train", tracking.DEVICE: backends.devices()}
    tags[tracking.BACKEND] = plan.backend
    run_id = tracker.start_run(experiment_id, "train", tags=tags)
    try:
        logged = params.describe_params(plan.params) | {"seed": plan.seed}
        tracker.log_params(run_id, logged)
        verbose = 2 if plan.verbose else 0
        builder = plan.builder.load() if plan.builder else None
        if builder is not None and hyperparameters.takes_hp(builder):
            answer = hyperparameters.given_or_default(plan.params)
            builder = hyperparameters.bind(builder, answer)
        result = train_and_evaluate(
            plan.params, data, seed=plan.seed, verbose=verbose, builder=builder
        )
        if isinstance(builder, hyperparameters.BoundBuilder):  # its defaults, by name
            tracker.log_params(run_id, {k: v for k, v in builder.values.items() if k not in logged})
        tracker.log_metrics(run_id, result.history, final_metrics(result))
        tracker.set_tags(run_id, figure_tags(result))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_trial_files(folder, result, data.class_names, model_summary(result.model))
            result.model.save(folder / "model.keras")
            tracker.log_artifacts(run_id, folder)
    except BaseException as error:
        with stopping.shielded():
            tracker.fail(run_id, error)
        if isinstance(error, KeyboardInterrupt):
            raise Interrupted(f"interrupted; MLflow run {run_id} is KILLED") from None
        raise
    tracker.end_run(run_id, tracking.FINISHED)
    if stopping.requested():  # it came after the training: its record is whole
        raise Interrupted(f"interrupted as training ended; MLflow run {run_id} is FINISHED")
    return run_id, result
