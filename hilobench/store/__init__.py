"""Run directories on disk: the row writer (``rows.jsonl`` appended per row, derived tables) and
the one checked loader every reader uses."""
