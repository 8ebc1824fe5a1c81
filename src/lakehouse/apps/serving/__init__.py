"""Online model serving: a FastAPI app answering ``POST /predict`` with a registered model.

It also speaks MLflow's scoring protocol (``POST /invocations``, ``GET /ping``, ``/version``;
:mod:`lakehouse.apps.serving.mlflow_protocol`), so clients of ``mlflow models serve`` work.

:func:`lakehouse.apps.serving.app.create_app` builds it (champion, optional challenger A/B split,
alias refresh without a restart); :mod:`lakehouse.apps.serving.predictions` logs every
prediction as JSON lines; ``lakehouse serve`` runs it (:mod:`lakehouse.apps.serving.server`).
"""
