"""The lifecycle: a training run, the MLflow registry, promotion, the pyfunc and batch scoring.

Owns what turns prepared data into a registered, promoted, loadable model. May import
``contract``, ``config``, ``ingest``, ``labels`` and ``model``; never report, service or cli.
"""
