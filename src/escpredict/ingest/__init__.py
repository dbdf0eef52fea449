"""Ingest: an export file (CSV, Parquet, JSON Lines; tickets or events) becomes canonical frames.

Owns reading, column mappings, event collapse and validation. May import only ``contract``,
``config`` and ``yamlfile``: it knows nothing of labels, models or MLflow.
"""
