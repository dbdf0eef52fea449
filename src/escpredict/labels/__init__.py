"""Labels and history: who escalated, which labels are mature, what was known when, which window.

Owns the label rules, label maturity, point-in-time agent/customer history and the time split.
May import ``contract``, ``config`` and ``ingest`` (agent roles); never the model or lifecycle.
"""
