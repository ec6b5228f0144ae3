"""The MLflow UI that `pipeline ui` serves: MLflow's own server, whose page first sets three
of the UI's browser settings, each only while the browser has none of its own:

- the model-training view, not the GenAI one (MLflow 3.17 opens GenAI pages unless the
  browser chose otherwise, and ignores the experiment's `mlflow.experimentKind` tag);
- its chat assistant not opened by itself on the first visit;
- its "new Model Registry UI" announcement seen.

A user who switches the view (the sidebar's "GenAI | Model training") or opens the
assistant keeps that choice. MLflow loads this module by its `mlflow.app` entry point:
`mlflow server --app-name pipeline` (a team's tracking server can run it too).

MLflow has no setting for these defaults, server-side or in a URL that survives a click:
its `?workflowType=` parameter is dropped by the links of its runs table, so a run opened
from the table fell back to the GenAI pages. Hence the few lines of script below.
"""

from __future__ import annotations

import json

from flask import request
from mlflow.server import app as flask_app

# localStorage keys of MLflow 3.17's UI, and the JSON values its settings store
DEFAULTS = {
    "mlflow.workflowType_v1": "machine_learning",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
    "_mlflow_model_registry_promo_modal_dismissed_v1": True,
}
SCRIPT = (
    "<script>(function(){var d="
    + json.dumps({k: json.dumps(v) for k, v in DEFAULTS.items()})
    + ";try{for(var k in d){if(localStorage.getItem(k)===null)localStorage.setItem(k,d[k]);}}"
    + "catch(e){}})();</script>"
)


@flask_app.after_request
def _with_defaults(response):
    """The UI's page (MLflow serves it for `/` and any other page path) with the script
    first in its head."""
    if response.status_code != 200 or response.mimetype != "text/html":
        return response
    if request.path.startswith(("/ajax-api", "/api", "/static-files/static")):
        return response
    response.direct_passthrough = False
    page = response.get_data(as_text=True)
    if "<head>" in page and SCRIPT not in page:
        response.set_data(page.replace("<head>", "<head>" + SCRIPT, 1))
        response.headers.pop("ETag", None)  # a cached copy without the script is stale
    return response


from mlflow.server.fastapi_app import app  # noqa: E402  (serves the Flask app above)

__all__ = ["DEFAULTS", "app"]
