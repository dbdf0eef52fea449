"""Scale-out: the training and scoring pipeline on a Dask cluster (``lightgbm.dask``).

Owns partition-wise ingest, history by shuffle and distributed training. May import every
stage below it (``ingest``, ``labels``, ``model``, ``lifecycle``); never report, service or cli.
"""
