"""Running a matrix: the selection expanded into cases (``plan``), the run's options (``options``), the cases
run in order with their repeats interleaved (``runner``), each in a fresh worker process (``launch``) on this
machine or over a cluster (``executors``), and the run folder that keeps what finished (``rundir``).
"""
