"""The claim vocabulary, shared by the suite parser and the claim checker.

Kept free of heavy imports so that reading a suite file does not load the statistics.
"""

from __future__ import annotations

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
