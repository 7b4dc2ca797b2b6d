"""Measuring cases: the engine that builds and measures one case, the worker processes that
isolate cases from each other, the runner that drives units in order, and the run session
that owns a run directory from its check to its last table."""
