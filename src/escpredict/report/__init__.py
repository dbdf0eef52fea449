"""The manager report: KPIs, escalation drivers and fair observed-vs-expected comparisons.

Owns ``escpredict report``'s HTML and tables. May import every stage (``ingest``, ``labels``,
``model``, ``lifecycle``); never service or cli.
"""
