"""Suites: YAML files read within limits, their fields checked, their cases expanded, their
compare groups, claims and gate settings parsed."""
