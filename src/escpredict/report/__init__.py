"""The manager report: KPIs, escalation drivers and fair observed-vs-expected comparisons."""
