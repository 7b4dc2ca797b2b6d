"""The regression gate: judge a candidate against its base, and measure both to do so.

- :mod:`~hilobench.gate.policy`: thresholds, minimum effect, the fields that must be equal
- :mod:`~hilobench.gate.runs`: stored runs and rows as the judge reads them
- :mod:`~hilobench.gate.speed`: speed statistics (units, rank tests, ratio intervals)
- :mod:`~hilobench.gate.claims`: ratio claims, parsed once, checked on rows
- :mod:`~hilobench.gate.judge`: rows of both sides → a verdict
- :mod:`~hilobench.gate.verdict`: the judged result types and exit codes
- :mod:`~hilobench.gate.render`: a verdict as markdown or terminal tables
- :mod:`~hilobench.gate.baseline`: the committed deterministic baseline
- :mod:`~hilobench.gate.worktree`: the base revision in a temporary git worktree
- :mod:`~hilobench.gate.side`: one revision's side, run inside a worker process
- :mod:`~hilobench.gate.sides`: the driver's handles on the two sides
- :mod:`~hilobench.gate.driver`: measures base and candidate interleaved, then judges

Nothing is imported here, so judging stored runs never pays for torch.
"""
