"""The vocabulary every other package speaks: cases, knobs, rows, errors, dtypes, plans, claim
terms, names as users type them, numbers and columns as people read them, and the one file
writer. It imports nothing of hilobench above it, and nothing heavy: the CLI starts fast."""
