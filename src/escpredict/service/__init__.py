"""Real-time scoring service (FastAPI): ``escpredict serve`` or ``create_app(ServiceSettings())``.

Owns HTTP, auth, limits, telemetry and model reloads. May import ``contract``, ``config``,
``model`` and ``lifecycle`` (loading from the registry); never ingest, report or cli.
"""
