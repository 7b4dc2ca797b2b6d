"""The gate's vocabulary: claim fields and metrics (shared by the suite parser and the claim
checker), and the verdicts it gives to cases and claims.

Kept free of heavy imports so that reading a suite file does not load the statistics. Verdicts
are string-valued enums: JSON, tables and stored verdicts keep the plain words.
"""

from __future__ import annotations

from enum import StrEnum


class CaseVerdict(StrEnum):
    """What the gate says about one case (and its speed alone)."""

    PASS = "pass"
    REGRESSION = "regression"
    BORDERLINE = "borderline"
    IMPROVED = "improved"
    UNJUDGED = "unjudged"
    MISSING_BASE = "missing_base"


class ClaimStatus(StrEnum):
    """How a ratio claim came out on the rows."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    MISSING = "missing"
    NOT_APPLICABLE = "not applicable"


#: Claim metric → the row column it is computed from (speed metrics come from the samples).
CLAIM_METRICS = {
    "throughput": "samples_s", "latency": "samples_s", "macs": "macs", "params": "params",
    "memory": "peak_mem_bytes",
}  # fmt: skip
#: Metrics judged from timing samples, per interleaved round.
SPEED_METRICS = ("throughput", "latency")
#: Fields a claim may have.
CLAIM_KEYS = ("a", "b", "metric", "min_ratio", "max_ratio", "name", "note", "device")
#: Devices a claim can be limited to (a CPU figure is no claim about a GPU, and back).
CLAIM_DEVICES = ("cpu", "cuda")
