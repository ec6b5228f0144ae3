"""pipeline: hyperparameter searches of Keras networks, tracked in MLflow. From Python,
`pipeline.search(...)` and `pipeline.train(...)` run what the command line runs."""


def __getattr__(name: str):
    """`pipeline.search`, `pipeline.train`: imported when first used, so that the command
    line and worker processes do not pay for Optuna before they need it."""
    if name in ("search", "train", "SearchResult", "TrainResult"):
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "search", "train", "SearchResult", "TrainResult"])
