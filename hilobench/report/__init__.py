"""Reports on stored runs: what was measured, how it scales, how it compares with the paper and
across machines. Data flows runs → rows → series / tables → ``report.md``.

- :mod:`~hilobench.report.run_rows`: run directories with their rows and a label per machine
- :mod:`~hilobench.report.rows`: row accessors every view shares
- :mod:`~hilobench.report.series`: rows → plot series (name → (x, y))
- :mod:`~hilobench.report.tables`: the results and compare-group tables, as Markdown
- :mod:`~hilobench.report.paper`: the side-by-side with the paper's tables, as ratios
- :mod:`~hilobench.report.merge`: one table across machines
- :mod:`~hilobench.report.plots`: the figures (matplotlib, optional)
- :mod:`~hilobench.report.markdown`: ``report.md`` with its figures

Nothing is imported here, so ``show`` never pays for matplotlib.
"""
