"""escpredict: predict support-ticket escalations at creation time, and say why."""

import os

# LightGBM's OpenMP threads spin while they wait for each other. On a laptop or a shared box
# where another process holds a core, every barrier then burns a time slice: training at 30k
# tickets took 17-68 s with 2 spinning threads against 4-6 s with passive waiting. The
# variable must be set before libgomp loads, i.e. before lightgbm is imported; a value the
# user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
