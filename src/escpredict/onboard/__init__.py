"""Onboarding a new export: ``mapping init`` drafts a mapping, ``check`` dry-runs it.

Owns ``draft/`` and ``check``. May import ``contract``, ``config``, ``yamlfile``, ``ingest``
and ``labels`` (rules, maturity and windows as training applies them); never model or lifecycle.
"""
