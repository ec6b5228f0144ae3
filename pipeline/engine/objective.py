"""One trial, as Optuna's `objective(trial)`: take its params from the plan, train with the
pruner listening to every epoch, and record it as a child run of the invocation's parent."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import optuna

from pipeline import datasets, hyperparameters, metrics, params, stopping, tracking, trial_record
from pipeline.engine.kept import KeptModels
from pipeline.engine.plan import Plan, WorkerSlot
from pipeline.engine.records import (
    TrialRecorder,
    dataset_inputs,
    final_metrics,
    model_summary,
)

log = logging.getLogger("pipeline")


class Objective:
    def __init__(
        self,
        plan: Plan,
        data: DataCache,
        tracker,
        slot: WorkerSlot,
        kept: KeptModels,
        device: str,
        where: dict[str, str] | None = None,
    ) -> None:
        self.plan, self.data, self.tracker, self.slot, self.kept = plan, data, tracker, slot, kept
        self.tags = plan.tags | {tracking.DEVICE: device} | (where or {})
        self.recorder = TrialRecorder(tracker)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        stopping.check()  # a signal came as the trial began: it starts no run
        values, seed = self.plan.trials.params_of(trial), self.plan.trials.seed_of(trial)
        run_id = self._start_run(trial)
        result, data = self._train(trial, values, seed, run_id)
        state = tracking.PRUNED if result.stopped_by == "pruned" else tracking.COMPLETE
        self._remember(trial, result, values)
        summary = model_summary(result.model) if result.model is not None else None
        try:
            self.recorder.record(
                run_id, trial.number, result, summary=summary, state=state, classes=data.class_names
            )
        except Exception as error:  # the trial fails with its record, not the next one
            trial_record.note_error(trial, f"recording in MLflow: {error}")
            with contextlib.suppress(Exception):
                self.tracker.fail(run_id, error)
            raise
        if state == tracking.COMPLETE:  # only a trial whose record is written
            bundle = self._bundle_writer(values, data)
            self.kept.offer(trial.study, trial, run_id, result, bundle)
        if state == tracking.PRUNED:
            raise optuna.TrialPruned(f"pruned at epoch {result.epochs_run}")
        if len(self.plan.objectives) > 1:
            second = metrics.logged_metric(self.plan.objectives[1])
            return result.val_value, getattr(result, second)
        return result.val_value

    def close(self) -> None:
        self.recorder.close()

    def _start_run(self, trial: optuna.Trial) -> str:
        tags = self.tags | {
            tracking.TRIAL_NUMBER: trial.number,
            tracking.TRIAL_STATE: tracking.RUNNING,
            tracking.WORKER_PID: os.getpid(),
        }
        slot = self.slot
        name = f"trial-{trial.number}"
        run_id = self.tracker.start_run(slot.experiment_id, name, slot.parent_run_id, tags)
        trial_record.note_start(trial, run_id, self.slot.index)
        return run_id

    def _train(self, trial: optuna.Trial, values: dict[str, Any], seed: int, run_id: str):
        from pipeline.training import train_and_evaluate  # deferred: after `work` quiets TF

        hook = None
        if len(self.plan.objectives) == 1:  # Optuna prunes single-objective studies only
            hook = pruning_hook(trial, metrics.val_metric(self.plan.dataset.task))
        try:
            options = params.data_options(values)
            data = self.data.get(options)
            if self.plan.kind == "search":  # seed tables train their rows as written
                values = params.cap_batch(values, len(data.train))
            self.tracker.log_params(run_id, params.describe_params(values) | {"seed": seed})
            self.tracker.log_datasets(run_id, dataset_inputs(self.plan.dataset, options, data))
            verbose = 2 if self.plan.verbose else 0
            keep_best = self.plan.trials.keep_best_epoch
            builder = self._builder(trial)
            try:
                result = train_and_evaluate(
                    values,
                    data,
                    seed=seed,
                    on_epoch=hook,
                    verbose=verbose,
                    keep_best=keep_best,
                    builder=builder,
                )
            finally:  # a Keras Tuner builder's values exist once it has built
                if isinstance(builder, hyperparameters.BoundBuilder):
                    logged = params.describe_params(values)
                    asked = {k: v for k, v in builder.values.items() if k not in logged}
                    self.tracker.log_params(run_id, asked)
            return result, data
        except BaseException as error:
            trial_record.note_error(trial, str(error) or type(error).__name__)
            self.tracker.fail(run_id, error)
            raise

    def _builder(self, trial: optuna.Trial):
        """The user's builder, if any; a Keras Tuner `build_model(hp)` asks this trial."""
        if self.plan.builder is None:
            return None
        builder = self.plan.builder.load()
        if hyperparameters.takes_hp(builder):
            return hyperparameters.bind(builder, lambda question, _: params.ask(trial, question))
        return builder

    def _bundle_writer(self, values: dict[str, Any], data: datasets.Dataset):
        """Writes a trial's end-to-end bundle: its network, with what its features were
        fitted with (raw input in) and the user's code."""
        from pipeline import inference  # deferred: after `work` quiets TF

        def write(model_path, folder):  # only for a trial among the best K: the fitted
            # features (a call to the driver's data server on Ray) are fetched then
            builder = self.plan.builder
            return inference.save_bundle(
                folder=folder,
                model_path=model_path,
                fitted=self.data.fitted(params.data_options(values)),
                task=self.plan.dataset.task,
                classes=data.class_names,
                modules=builder.modules if builder else (),
                files=builder.files() if builder else (),
            )

        return write

    def _remember(self, trial: optuna.Trial, result, values: dict[str, Any]) -> None:
        representation = params.representation(values)
        trial_record.note_result(trial, result, representation, final_metrics(result))


def pruning_hook(trial: optuna.Trial, metric: str):
    """Each epoch's validation metric to the pruner; True when it says stop."""

    def on_epoch(epoch: int, logs: dict[str, float]) -> bool:
        trial.report(logs[metric], step=epoch + 1)
        return trial.should_prune()

    return on_epoch


class DataCache:
    """The dataset in each representation a trial asks for (vocabulary, n-grams, output
    mode, headline), loaded once per process: read from the disk cache, a few kept here."""

    def __init__(
        self,
        spec: datasets.Spec,
        default: datasets.Dataset | None = None,
        loader=None,
        fitter=None,
    ) -> None:
        self.spec, self.default = spec, default  # the seeds' representation, when loaded
        self.others: dict[datasets.DataOptions, datasets.Dataset] = {}
        self.loader = loader or (lambda options: datasets.load_dataset(spec, options))
        self.fitter = fitter or (lambda options: datasets.fitted_for(spec, options))

    def fitted(self, options: datasets.DataOptions) -> datasets.Fitted:
        """What the representation's features were fitted with, where its data was read."""
        return self.fitter(options)

    def get(self, options: datasets.DataOptions) -> datasets.Dataset:
        if options == datasets.DataOptions():
            if self.default is None:  # loaded when a trial first asks for it
                log.info("loading %s", self.spec.name)
                self.default = self.loader(datasets.DataOptions())
            return self.default
        if options not in self.others:
            log.debug("loading %s with %s", self.spec.name, options)
            if len(self.others) >= 3:  # a few in memory; the rest stay on disk
                self.others.pop(next(iter(self.others)))
            self.others[options] = self.loader(options)
        return self.others[options]
