"""Measurement primitives: timing, statistics, memory, FLOPs and the environment fingerprint.

Submodules are imported on demand (``from hilobench.measure import timing``) so that importing
the package stays cheap and no optional counting dependency is loaded unless asked for.
"""
