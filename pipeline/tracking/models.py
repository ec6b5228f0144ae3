"""The best model as MLflow knows models: a pyfunc around the end-to-end bundle (raw input
in), logged on its trial run, registered under the study's name, and the `champion` alias
on the version best by the study's validation metric."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import mlflow
import pandas as pd
import sqlalchemy
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.errors import UserError
from pipeline.locks import check_database
from pipeline.settings import check_tracking_uri, mask, sqlite_path
from pipeline.tracking import bound_http, store_trouble

log = logging.getLogger("pipeline")
CHAMPION = "champion"
VALUE_TAG, METRIC_TAG = "val_value", "val_metric"  # on each model version
URI_SCHEMES = ("models:/", "runs:/", "file:", "mlflow-artifacts:", "s3:", "gs:", "http")
PACKAGE = Path(__file__).resolve().parent.parent  # pipeline/, shipped with the model


class BundleModel(mlflow.pyfunc.PythonModel):
    """MLflow's view of `inference.Predictor`: a frame with a `text` column (or the raw
    feature columns) in, labels and probabilities (or values) out."""

    def load_context(self, context) -> None:
        from pipeline import inference

        self.predictor = inference.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.predictor.predict(model_input)


def registered_name(study: str) -> str:
    """A study name as a registered model name: letters, digits, `.`, `_`, `-`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", study).strip("-") or "model"


def log_model(
    tracking_uri: str,
    run_id: str,
    bundle: Path,
    example: pd.DataFrame | None,
    study: str,
    value: tuple[str, float, bool],
    requirements: tuple[str, ...] = (),
    code: list[Path] | tuple[Path, ...] = (),
) -> str | None:
    """Log the bundle (one network's, or an ensemble's) as a pyfunc model on `run_id` and
    register it; the new version takes the champion alias when its validation value beats
    the champion's. `example`: two raw inputs (None: the bundle's own). `requirements`:
    pip requirements beyond the usual (the plugin that brought the dataset). `code`: the
    user's builder files, shipped with the model (MLflow's `code_paths`). Returns the
    model URI (`models:/NAME/VERSION`), or None where the store has no model registry."""
    from pipeline import inference

    mlflow.set_tracking_uri(tracking_uri)
    predictor = inference.load(bundle)
    example = predictor.example() if example is None else example
    try:
        output = predictor.predict(example)
    except ImportError:  # raw text needs TensorFlow, absent here: log the model anyway
        log.warning(
            "reading raw text needs TensorFlow, which is not installed here: the model is "
            "logged and registered, and predicts where TensorFlow is installed"
        )
        output, example = predictor.output_form(len(example)), None  # nothing to validate
    signature = mlflow.models.infer_signature(example, output)
    name = registered_name(study)
    # `Model.log` with `run_id`, not `pyfunc.log_model` inside `start_run(run_id)`: the
    # trial's run is FINISHED, and reopening it would leave it RUNNING were this process
    # killed now, or FAILED were it interrupted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's notes on pip requirements and pickling
        info = mlflow.models.Model.log(
            artifact_path=None,  # MLflow 3: `name`
            name="model",
            flavor=mlflow.pyfunc,
            run_id=run_id,
            python_model=BundleModel(),
            artifacts={"bundle": str(bundle)},
            code_paths=[str(PACKAGE), *map(str, code)],
            signature=signature,
            input_example=example,
            pip_requirements=[*_requirements(), *requirements],
        )
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its "Successfully registered" and
            # "Created version" lines: the summary names the model itself
            version = mlflow.register_model(info.model_uri, name, await_registration_for=60)
    except MlflowException as error:
        log.warning("model logged but not registered (%s): %s", mask(tracking_uri), error)
        return None
    crown(MlflowClient(tracking_uri), name, version.version, value)
    return f"models:/{name}/{version.version}"


def crown(client: MlflowClient, name: str, version: str, value: tuple[str, float, bool]) -> bool:
    """Tag the version with its validation value; give it the champion alias if it beats
    the current champion's (or there is none)."""
    metric, number, minimize = value
    client.set_model_version_tag(name, version, METRIC_TAG, metric)
    client.set_model_version_tag(name, version, VALUE_TAG, repr(number))
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
        same = champion.tags.get(METRIC_TAG) == metric  # else not comparable: the new one wins
        best = float(champion.tags.get(VALUE_TAG, "nan")) if same else None
    except MlflowException:
        best = None
    better = best is None or best != best or (number < best if minimize else number > best)
    if better:
        client.set_registered_model_alias(name, CHAMPION, version)
    return better


def model_uri(model: str, study_of) -> str:
    """`pipeline predict MODEL`: an MLflow model URI as it is, else a dataset or study name
    whose champion is meant (`study_of` turns a dataset name into its study name)."""
    if model.startswith(URI_SCHEMES) or (Path(model) / "MLmodel").is_file():
        return model
    return f"models:/{registered_name(study_of(model))}@{CHAMPION}"


TRACKED = ("models:/", "runs:/", "mlflow-artifacts:")  # model URIs the tracking store resolves


def check_store(tracking_uri: str, uri: str) -> None:
    """The store that resolves model `uri` is there, readable and reachable: else one
    line, within seconds. Only reads: a store that is not there is not created."""
    if not uri.startswith(TRACKED):
        return  # a folder or a cloud URI: the tracking store is not asked
    database = sqlite_path(check_tracking_uri(tracking_uri))
    if database is not None and not database.is_file():
        raise UserError(f"no model at {uri} in {_where(tracking_uri)}: no store there{_hint(uri)}")
    bound_http(tracking_uri)  # an unreachable server: one line, not minutes of retries
    if database is not None:
        check_database(database)


class LoadedBundle:
    """A model this project logged (`BundleModel`), read straight from its files: MLflow's
    pyfunc loader also checks the model's pip requirements against this environment and
    unpickles its class, which cost `pipeline predict` seconds. Predicts as the pyfunc
    model does; `metadata` is its MLmodel (the signature)."""

    def __init__(self, metadata, predictor) -> None:
        self.metadata, self.predictor = metadata, predictor

    def predict(self, model_input: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict(model_input)


def load_model(tracking_uri: str, uri: str):
    """The model at `uri`: a `LoadedBundle` for a model this project logged, else MLflow's
    pyfunc model; a missing one, or a store that cannot be read or reached, is a
    UserError."""
    check_store(tracking_uri, uri)
    mlflow.set_tracking_uri(check_tracking_uri(tracking_uri))
    try:
        with tempfile.TemporaryDirectory() as folder:
            local = _model_files(uri, Path(folder))
            metadata = mlflow.models.Model.load(str(local / "MLmodel"))
            pyfunc = metadata.flavors.get("python_function", {})
            bundle = pyfunc.get("artifacts", {}).get("bundle", {}).get("path")
            if bundle is not None and pyfunc.get("python_model"):
                from pipeline import inference

                return LoadedBundle(metadata, inference.load(local / bundle))
        return mlflow.pyfunc.load_model(uri)  # any other MLflow model
    except (MlflowException, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise UserError(
            f"no model at {uri} in {_where(tracking_uri)}: {first}{_hint(uri)}"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:  # the store's file, read by SQLAlchemy
        raise UserError(store_trouble(tracking_uri, error)) from None


def _model_files(uri: str, folder: Path) -> Path:
    """The folder of a logged model's files: where they lie, for a registered model whose
    artifacts are on this machine; else downloaded into `folder`."""
    if uri.startswith("models:/"):
        from mlflow.store.artifact.utils.models import get_model_name_and_version

        client = MlflowClient()
        name, version = get_model_name_and_version(client, uri)
        source = urlsplit(client.get_model_version_download_uri(name, version))
        if source.scheme == "file" and (Path(url2pathname(source.path)) / "MLmodel").is_file():
            return Path(url2pathname(source.path))
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))


def load_keras_model(tracking_uri: str, uri: str):
    """The Keras network inside the logged model at `uri` (the bundle's, loaded once; an
    ensemble's: its member with the largest weight)."""
    loaded = load_model(tracking_uri, uri)
    if not isinstance(loaded, LoadedBundle):
        raise UserError(f"{uri} is not a model logged by pipeline: it holds no Keras network")
    return loaded.predictor.model


def _where(tracking_uri: str) -> str:
    where = mask(tracking_uri)
    database = sqlite_path(tracking_uri)
    if database is not None and not database.is_absolute():  # run from another folder?
        where += f", relative to the current folder {Path.cwd()}"
    return where


def _hint(uri: str) -> str:
    """For a champion, where it comes from."""
    if CHAMPION not in uri:
        return ""
    return " (a search registers its best model when it completes a trial)"


def _requirements() -> list[str]:
    """What the model needs to load where `pipeline` is not installed (its code ships)."""
    names = ("tensorflow", "keras", "numpy", "scipy", "scikit-learn", "pandas", "pyyaml")
    found = []
    for name in names:  # TensorFlow reads raw text: unpinned where this machine lacks it
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(name)
    return found


def input_columns(model) -> list[str]:
    """The columns a logged model's signature asks for (`text`, or a table's features)."""
    schema = model.metadata.get_input_schema()
    return list(schema.input_names()) if schema is not None else []


def input_types(model) -> dict[str, str]:
    """The MLflow type of each input column of a logged model's signature (`double`, ...)."""
    schema = model.metadata.get_input_schema()
    return {c.name: c.type.name for c in schema.inputs} if schema is not None else {}
