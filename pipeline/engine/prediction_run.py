"""`pipeline predict`: raw inputs from the command line or a file, through a logged model
(a dataset's or study's champion, or an MLflow model URI), rendered as a table, JSON or
CSV."""

from __future__ import annotations

from pipeline import datasets, prediction, quiet, settings
from pipeline.engine.jobs import PredictJob
from pipeline.errors import UserError


def predict(job: PredictJob) -> str:
    """One line per input: its label and probability, or its predicted value. What can be
    said before TensorFlow loads (the format, the inputs, a missing model or store) is."""
    from pipeline.tracking import models

    inputs = prediction.read_inputs(list(job.texts), job.file)
    if job.fmt not in prediction.FORMATS:
        raise UserError(f"unknown format {job.fmt!r}; use {', '.join(prediction.FORMATS)}")
    uri = models.model_uri(job.model, lambda name: datasets.dataset_name(name, job.csv))
    store = settings.tracking_uri(job.tracking_uri)
    models.check_store(store, uri)  # missing, damaged, unreachable: said before TensorFlow
    quiet.import_tensorflow()  # without its start-up notes, before the model needs it
    loaded = models.load_model(store, uri)
    columns = models.input_columns(loaded)
    prediction.check_columns(inputs, columns, job.file)
    typed = prediction.coerce(inputs, models.input_types(loaded), job.file)
    return prediction.render(inputs, loaded.predict(typed[columns] if columns else typed), job.fmt)
