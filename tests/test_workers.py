"""Several worker processes on one study: exact trial counts, one run per trial."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from pipeline import engine
from pipeline.engine import runner, workers
from tests.conftest import check_best_everywhere, check_one_run_per_trial, runs_of, space_file


def test_quotas_split_evenly():
    assert workers.quotas(10, 4) == [3, 3, 2, 2]
    assert workers.quotas(1, 2) == [1, 0]
    assert sum(workers.quotas(40, 4)) == 40


def note_sampler_seed(notes: str, target, *arguments) -> None:
    """A worker process's target (picklable: spawned by name from this module): note the seed
    each TPE sampler built here gets, in a file named for this process, then work."""
    init = optuna.samplers.TPESampler.__init__

    def noting(self, *args, seed=None, **kwargs):
        Path(notes, str(os.getpid())).write_text(f"{seed}\n")
        init(self, *args, seed=seed, **kwargs)

    optuna.samplers.TPESampler.__init__ = noting
    target(*arguments)


@pytest.mark.slow
def test_two_workers_on_sqlite_finish_exactly_n_trials(tiny_data, stores, tmp_path, monkeypatch):
    handed = []  # the dataset the parent holds while its workers train
    run_trials = runner._run_trials
    monkeypatch.setattr(
        runner,
        "_run_trials",
        lambda study, plan, executor, slot, data, tracker: (
            handed.append(data) or run_trials(study, plan, executor, slot, data, tracker)
        ),
    )
    notes = tmp_path / "seeds"
    notes.mkdir()
    run_workers = workers.run
    monkeypatch.setattr(
        workers,
        "run",
        lambda target, argument_lists, progress, **placement: run_workers(
            note_sampler_seed,
            [(str(notes), target, *a) for a in argument_lists],
            progress,
            **placement,
        ),
    )
    cfg = engine.SearchJob(
        dataset="imdb", space=space_file(tmp_path), n_trials=6, pruner="none", workers=2
    )
    outcome = engine.search(cfg)
    assert handed == [None]  # each worker loads its own; the parent's is read again after
    assert outcome.data.class_names == ("negative", "positive")
    check_one_run_per_trial(stores, "imdb", outcome.study, 6)
    check_best_everywhere(outcome.study, stores)
    client = MlflowClient(tracking_uri=stores["tracking"])
    parent = runs_of(stores["tracking"], "imdb")[0][0]
    assert "best_model.keras" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    _, children = runs_of(stores["tracking"], "imdb")
    pids = {c.data.tags["worker_pid"] for c in children}
    assert len(pids) == 2  # both workers trained
    seeds = {p.name: int(p.read_text()) for p in notes.iterdir()}
    assert set(seeds) == pids  # each worker built one sampler
    assert len(set(seeds.values())) == 2, seeds  # the workers' samplers are seeded apart
    first_params = {c.data.params["units_1"] + c.data.params["activation"] for c in children}
    assert len(first_params) > 2
