"""escpredict: predict support-ticket escalations at creation time, and say why."""

__version__ = "0.1.0"
