"""A plugin whose import fails, as when its framework is missing."""

raise ImportError("needs the frobnicator package")
