"""MLPerf's own load generator (``mlcommons-loadgen``) driving a plugin session: ``--inference loadgen``.

LoadGen is an optional extra, imported only inside the worker of a case that asks for it (and by the
CLI's check before any case runs). See docs/loadgen.md.

- ``settings``: LoadGen's test settings per profile (MLPerf's mlperf.conf for full, shortened otherwise);
- ``sut``: the system under test and query sample library around ``stage``/``predict``/``sync``;
- ``server``: the bounded search for the highest VALID Server QPS under a p99 bound;
- ``summary``: ``mlperf_log_summary.txt`` parsed into the record;
- ``measure``: the scenarios of one case, and their consistency with dlbench's own timing.
"""

from __future__ import annotations

from importlib import metadata

from dlbench.errors import UsageError
from dlbench.loadgen.settings import SCENARIOS

INSTALL = "pip install 'dlbench[loadgen]'"

__all__ = ["SCENARIOS", "INSTALL", "loadgen_version", "require_loadgen"]


def require_loadgen() -> str:
    """LoadGen's version; UsageError (one line, the install command) when it cannot be imported."""
    try:
        import mlperf_loadgen  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--inference loadgen needs MLPerf's LoadGen, which is not installed ({exc}); "
                         f"install it with: {INSTALL}") from None
    return loadgen_version()


def loadgen_version() -> str:
    try:
        return metadata.version("mlcommons-loadgen")
    except metadata.PackageNotFoundError:
        return "unknown"
