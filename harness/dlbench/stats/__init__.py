"""Statistics, with no knowledge of records or frameworks: robust estimators of timings (``estimators``),
the verdicts of a comparison between two sets of repeats (``decide``), and change points in a history
(``changepoints``). Everything above this package asks it; it asks nothing of them.
"""
