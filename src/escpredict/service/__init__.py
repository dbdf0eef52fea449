"""Real-time scoring service (FastAPI): ``escpredict serve`` or ``create_app(ServiceSettings())``."""
