"""The regression gate: judge a candidate against its base, and measure both to do so.

- :mod:`~hilobench.gate.policy`: thresholds, minimum effect, the fields that must be equal
- :mod:`~hilobench.gate.gate_errors`: the gate's exceptions and exit codes (a leaf)
- :mod:`~hilobench.gate.row_ids`: a row's label, case id and comparable setting (a leaf)
- :mod:`~hilobench.gate.stored_runs`: stored runs as the judge reads them
- :mod:`~hilobench.gate.speed`: speed statistics (units, rank tests, ratio intervals)
- :mod:`~hilobench.gate.claims`: ratio claims, parsed once, checked on rows
- :mod:`~hilobench.gate.judge`: rows of both sides → a verdict
- :mod:`~hilobench.gate.verdict`: the judged result types
- :mod:`~hilobench.gate.comment`: a verdict as markdown or terminal tables
- :mod:`~hilobench.gate.baseline`: the committed deterministic baseline
- :mod:`~hilobench.gate.worktree`: the base revision in a temporary git worktree
- :mod:`~hilobench.gate.side_worker`: one revision's side, run inside a worker process
- :mod:`~hilobench.gate.side_procs`: the driver's handles on the two sides
- :mod:`~hilobench.gate.driver`: measures base and candidate interleaved, then judges

Nothing is imported here, so judging stored runs never pays for torch.
"""
