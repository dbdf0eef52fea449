"""Gunicorn settings for the scoring API in production; every value can be set from the environment.

    gunicorn -c serving/gunicorn.conf.py "escpredict.service.app:from_env()"

Each worker is a uvicorn event loop that loads its own copy of the model (``preload_app`` stays
off: LightGBM's OpenMP thread pool must not be forked). Prometheus metrics of all workers are
merged through files in ``PROMETHEUS_MULTIPROC_DIR``.
"""

import os
import tempfile
from typing import Any

bind = os.environ.get("ESCPREDICT_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Scoring is CPU-bound: one worker per core, one OpenMP thread each (below).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "uvicorn_worker.UvicornWorker"
preload_app = False
# Model load can take a while on a cold MLflow store; a worker must not be killed meanwhile.
timeout = int(os.environ.get("ESCPREDICT_WORKER_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("ESCPREDICT_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("ESCPREDICT_KEEPALIVE", "15"))
# Recycle workers now and then so a slow leak never becomes an outage; jitter avoids a herd.
max_requests = int(os.environ.get("ESCPREDICT_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
# Access lines carry method, path and status only: no bodies, so no ticket text.
accesslog = os.environ.get("ESCPREDICT_ACCESS_LOG", "-")
loglevel = os.environ.get("ESCPREDICT_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Single-ticket LightGBM calls are fastest on one thread; workers import LightGBM after fork.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="escpredict-metrics-"))


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (the loaded-model gauge) from /metrics."""
    # Imported here: prometheus_client picks its multi-process mode when first imported, which
    # must happen after PROMETHEUS_MULTIPROC_DIR is set above.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
