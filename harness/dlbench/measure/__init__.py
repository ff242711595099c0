"""Measurement inside the worker: the process that runs one case (``worker``) loads its data, builds the
plugin's session, checks parity (``parity``), times training and inference blocks (``timing``) under the
profile's budget (``profiles``), reads the meters beside the clock (``energy``, ``device_meters``,
``thread_meter``) and derives the record's numbers (``metrics``). Nothing here decides whether one number
beats another: that is ``dlbench.stats``.
"""
