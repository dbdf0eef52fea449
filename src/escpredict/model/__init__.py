"""The model: feature matrix, offsets, booster, calibration, reasons, and how they are judged.

Owns ``EscalationModel`` and every scoring path, explanations, metrics and plots. May import
``contract``, ``config`` and ``labels`` (the history snapshot); never ingest, lifecycle or MLflow.
"""
