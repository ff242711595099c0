"""dlbench: a fair, reproducible benchmark harness for deep-learning frameworks.

The core never imports a framework; plugins do, inside the worker process that runs one case.
"""

__version__ = "0.1.0"
