"""escpredict: predict support-ticket escalations at creation time, and say why.

Data flows one way, and the subpackages are its stages (``docs/architecture.md``):
``ingest`` (export → canonical frames) → ``labels`` (labels, maturity, history, time split)
→ ``model`` (features, booster, calibration, reasons) → ``lifecycle`` (training run, MLflow
registry, promotion, pyfunc, batch) → ``report`` / ``service``. ``contract`` and ``config``
are the vocabulary every stage shares; ``samples``, ``onboard`` and ``scaleout`` sit beside
the flow; ``cli`` and ``demo`` are thin layers on top, and nothing imports ``cli``.
"""

import os

# LightGBM's OpenMP threads spin while they wait for each other. On a laptop or a shared box
# where another process holds a core, every barrier then burns a time slice: training at 30k
# tickets took 17-68 s with 2 spinning threads against 4-6 s with passive waiting. The
# variable must be set before libgomp loads, i.e. before lightgbm is imported; a value the
# user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.2.0"
