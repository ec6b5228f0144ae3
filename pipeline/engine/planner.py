"""Plans from jobs: every check happens here (with `checks`), once, before anything is
created; the runner and the workers then trust the plan."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import backends, datasets, locks, metrics, params, seed_tables, settings, spaces
from pipeline.engine import checks, studies
from pipeline.engine.jobs import ReproduceJob, SearchJob, TrainJob
from pipeline.engine.plan import KnownConfig, Plan, SpaceTrials, TableTrials, TrainPlan
from pipeline.errors import UserError

log = logging.getLogger("pipeline")
WARM_START_TRIALS = 5  # `--warm-start study:NAME` tries that study's best five first
MAX_SEEDS = 1_000  # reproduce's grid lists every (row, seed) pair up front


def search_plan(job: SearchJob) -> Plan:
    """The study that `pipeline search` runs; its `--timeout` counts from now."""
    began = time.time()
    spec = datasets.spec_of(job.dataset, job.csv)
    checks.at_least_one("--n-trials", job.n_trials)
    checks.at_least_one("--heartbeat", job.heartbeat)
    checks.at_least_one("--keep", job.keep)
    checks.at_least_zero("--ensemble-size", job.ensemble_size)
    timeout = job.timeout
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UserError(f"--timeout must be a positive number of seconds, got {timeout}")
    checks.check_seed(job.seed)
    settings.check_tracking_uri(settings.tracking_uri(job.tracking_uri))
    space = checks.load_space(spec, job.space, job.builder)
    if "embedding" in space.families() and spec.task == "regression":
        raise UserError(f"{space.path}: the embedding family needs a text dataset")
    backend = backends.chosen(job.backend)
    checks.check_ray(job.ray)
    probed = checks.check_builder(space, spec, backend)
    _warn_unread(space, probed)
    if probed.takes_hp and job.sampler == "grid":
        raise UserError(
            f"{space.path}: a build_model(hp) declares its space as it builds; the grid "
            "sampler needs it up front: use --sampler tpe or random"
        )
    objectives = metrics.parse_objectives(spec.task, job.objective)
    stores = checks.stores(job, job.workers)
    known = known_configs(spec, space, job.sampler, job.warm_start, stores.storage)
    if probed.asked and known:  # the recipe trial answers every `hp` call with its default
        recipe = known[0]
        known = (replace(recipe, trial_params=probed.asked | recipe.trial_params), *known[1:])
    trials = SpaceTrials(space, job.sampler, job.pruner, job.seed, known)
    plan = Plan(
        study=job.study or default_study(spec, space),
        dataset=spec,
        trials=trials,
        n_trials=job.n_trials,
        stores=stores,
        objectives=objectives,
        timeout=timeout,
        deadline=None if timeout is None else began + timeout,
        workers=job.workers,
        heartbeat=job.heartbeat,
        verbose=job.verbose,
        backend=backend,
        ray=job.ray,
        parent_params=_search_params(job, spec, space, stores.storage),
        keep=job.keep,
        ensemble_size=job.ensemble_size,
    )
    studies.make_sampler(plan)  # a bad sampler or pruner fails before the study exists
    studies.make_pruner(plan.pruner, trials.warmup_epochs)
    return plan


def default_study(spec: datasets.Spec, space: spaces.Space) -> str:
    """A search's study (and registered model) when none is named: the dataset's name; a
    custom space's adds the space's name (its file's, else its builder function's:
    `imdb-gru`), so that it does not join the built-in search of the same dataset."""
    if space.builder is None:
        return spec.name
    path = Path(str(space.path))
    function = space.builder.function.rsplit(".", 1)[-1]  # a notebook's: its own name
    name = path.stem if path.suffix in (".yaml", ".yml") else function
    return name if name.startswith(f"{spec.name}-") else f"{spec.name}-{name}"


def _warn_unread(space: spaces.Space, probed: checks.Probed) -> None:
    """One line for each key of the space's own that its builder never read: trials that
    differ only in it would train the same network."""
    for key in probed.unread:
        log.warning(
            "%s: %s is declared but the builder never reads it; trials that differ only "
            "in it train the same network (remove it, or read it in the builder)",
            space.path,
            key,
        )


def _search_params(
    job: SearchJob, spec: datasets.Spec, space: spaces.Space, storage: str
) -> dict[str, Any]:
    """What the parent run of a search logs as its params."""
    described = {
        "dataset": spec.name,
        "space": str(space.path),
        "n_trials": job.n_trials,
        "timeout": job.timeout,
        "seed": job.seed,
        "storage": settings.mask(storage),
        "warm_start": ",".join(job.warm_start) or "defaults",
    }
    return described | ({"builder": space.builder.describe()} if space.builder else {})


def reproduce_plan(job: ReproduceJob) -> Plan:
    """A grid study that trains every row of a seed table `job.seeds` times."""
    specs: dict[str, datasets.Spec] = {}

    def task_of(name: str) -> str:
        return specs.setdefault(name, datasets.spec_of(name)).task

    seed_table = seed_tables.load(seed_tables.table_path(job.table), task_of)
    if not 1 <= job.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be between 1 and {MAX_SEEDS}, got {job.seeds}")
    settings.check_tracking_uri(settings.tracking_uri(job.tracking_uri))
    spec = specs.get(seed_table.dataset) or datasets.spec_of(seed_table.dataset)
    backend = backends.chosen(job.backend)
    if seed_table.space is not None:
        checks.check_builder(seed_table.space, spec, backend)
    return Plan(
        study=job.study or f"reproduce-{seed_table.name}",
        dataset=spec,
        trials=TableTrials(seed_table, job.seeds),
        n_trials=len(seed_table.rows) * job.seeds,
        stores=checks.stores(job, job.workers),
        objectives=(metrics.task_metric(spec.task),),
        workers=job.workers,
        verbose=job.verbose,
        backend=backend,
        ray=checks.check_ray(job.ray),
        parent_params={
            "table": seed_table.name,
            "dataset": spec.name,
            "seeds": job.seeds,
            "rows": len(seed_table.rows),
        },
    )


def known_configs(
    spec: datasets.Spec,
    space: spaces.Space,
    sampler: str,
    warm_start: tuple[str, ...],
    storage: str,
) -> tuple[KnownConfig, ...]:
    """What a study tries first: the space's defaults (the seed recipe), its `warm_start`
    entries, then each `--warm-start`: a seed table's rows, or `study:NAME`'s best trials.
    None with the grid sampler, which tries its own points."""
    if sampler == "grid":
        if warm_start:
            raise UserError("--warm-start needs the tpe or random sampler, not grid")
        return ()
    configs = [(studies.RECIPE, dict(space.defaults))]
    configs += [(f"warm_start[{i}]", c) for i, c in enumerate(space.warm_start, 1)]
    for name in warm_start:
        if name.startswith("study:"):
            continue
        table = seed_tables.load(
            seed_tables.table_path(name),
            lambda dataset: datasets.spec_of(dataset).task,
        )
        if table.dataset != spec.name:
            raise UserError(f"--warm-start {name}: a table of {table.dataset}, not {spec.name}")
        configs += [
            (f"{table.name} row {r.index}", {**space.defaults, **r.params}) for r in table.rows
        ]
    known = [_known(space, source, config) for source, config in configs]
    for name in (w.removeprefix("study:") for w in warm_start if w.startswith("study:")):
        for t in studies.best_trials_of(storage, name, WARM_START_TRIALS):
            known.append(
                KnownConfig(f"study {name} trial {t.number}", params.restrict(space, t.params))
            )
    return tuple(known)


def _known(space: spaces.Space, source: str, config: dict[str, Any]) -> KnownConfig:
    config = params.for_family(dict(config))
    if "units" in config:  # a custom builder's space may have none
        config["units"] = params.layer_units(config)
        config["n_layers"] = len(config["units"])
    return KnownConfig(source, params.trial_params(space, config), config)


def train_plan(job: TrainJob) -> TrainPlan:
    """One configuration: the space's defaults (the seed recipe) with `job.overrides`."""
    spec = datasets.spec_of(job.dataset, job.csv)
    checks.check_seed(job.seed)
    settings.check_tracking_uri(settings.tracking_uri(job.tracking_uri))
    base = checks.load_space(spec, job.space, job.builder)
    defaults = dict(base.defaults)
    overrides = dict(job.overrides)
    if base.is_custom:  # the values fixed under `search`, and no key of the builder unset
        defaults |= {p.name: p.value for p in base.params if p.kind == "fixed"}
        unset = [p.name for p in base.params if p.name not in defaults | overrides]
        if unset:
            raise UserError(
                f"{base.path}: {unset[0]} has no default; set {unset[0]}=VALUE "
                "or give it one under defaults"
            )
    backend = backends.chosen(job.backend)
    answers = {k: v for k, v in overrides.items() if k not in base.keys}
    # keys the space does not declare may be a Keras Tuner builder's `hp` names: only then
    # is it built twice (to tell its form); otherwise they are refused as unknown below
    if answers and base.is_custom and checks.check_builder(base, spec, backend).takes_hp:
        overrides = {k: v for k, v in overrides.items() if k in base.keys}
    else:
        answers = {}
    config = spaces.configuration(
        path="arguments", key="", base=defaults, changes=overrides, task=spec.task, known=base.keys
    )
    values = params.for_family(config) | answers
    uri = settings.tracking_uri(job.tracking_uri)
    locks.check_writable(uri, "--tracking-uri")
    asked = checks.check_builder(base, spec, backend, values).asked
    unasked = [k for k in answers if k not in asked]
    if unasked:
        raise UserError(
            f"{unasked[0]}: the builder does not ask for it with these values; "
            f"it asks for {', '.join(asked)}"
        )
    return TrainPlan(
        spec, values, job.seed, uri, job.verbose, backend=backend, builder=base.builder
    )
