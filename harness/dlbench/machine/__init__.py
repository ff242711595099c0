"""The machine: what it is (``identity``, ``cpu``, ``devices``), what it can do at most (``peak``), what it
was doing while a case ran (``state``), the environment a worker gets on it (``environment``), and the
advice of ``dlbench doctor`` (``doctor``). Nothing here imports a framework.
"""
