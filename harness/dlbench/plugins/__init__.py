"""Everything between the harness and its plugins: finding them (``registry``), calling them so that only
their own errors become "plugin X failed" (``guarded``), and what the harness lends every plugin so that
none restates it: the fairness profile (``fairness``) and the framework set-ups (``torch_setup``,
``jax_setup``). The contract itself is ``dlbench.hookspecs`` and ``dlbench.contract``, with the harness's
batch order ``dlbench.stream``.
"""
