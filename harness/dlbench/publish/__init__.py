"""Many runs published as a static site: runs grouped into per-machine case histories (``history``), changes
found in them (``dlbench.stats.changepoints``), the pages (``pages``, with ``linechart``'s hand-written SVG),
what a public site must not give away (``privacy``), and the incremental build (``site``).
"""
