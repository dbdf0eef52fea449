"""Samples: the data sets the project generates itself (``default`` tidy, ``realistic`` event log).

Owns the generators and their oracle files. May import ``contract`` and ``ingest`` (to
validate what it writes); nothing downstream, so a sample never depends on the model it tests.
"""
