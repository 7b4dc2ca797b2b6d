"""What the gate judges against: speed thresholds, the minimum effect, the exact fields.

A policy is a plain value: the suite's ``gate:`` settings and a case's own ``min_effect``
refine the default, so every case of a suite carries the policy it is judged by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError

if TYPE_CHECKING:
    from hilobench.suite.loader import Suite

#: Figures that must be equal between base and candidate. ``peak_mem_bytes`` is the
#: dispatch-level peak tensor bytes on the CPU only; on CUDA it is an allocator figure.
DETERMINISTIC = ("params", "macs", "macs_traced", "peak_mem_bytes")

#: Gate settings a suite or case may give besides the speed policy's own fields.
OTHER_SETTINGS = ("budget", "min_rounds")


@dataclass(frozen=True)
class SpeedPolicy:
    """How speed is judged. ``min_effect`` is a relative slowdown of the median time."""

    min_effect: float = 0.10
    alpha: float = 0.01
    min_samples: int = 9
    confirm_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.min_effect < 10.0:
            raise ConfigError(f"min_effect must be in (0, 10), got {self.min_effect!r}")
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(f"significance (alpha) must be in (0, 0.5), got {self.alpha!r}")
        if self.min_samples < 9:
            raise ConfigError(f"min_samples must be >= 9, got {self.min_samples!r}")
        if not 0.0 < self.confirm_fraction <= 1.0:
            raise ConfigError(f"confirm_fraction must be in (0, 1], got {self.confirm_fraction!r}")

    def with_overrides(self, settings: Mapping[str, Any] | None) -> SpeedPolicy:
        """This policy with the gate settings of a suite or a case applied."""
        if not settings:
            return self
        # a suite's `gate: {significance}` is this policy's alpha (the rank test's level)
        settings = {("alpha" if k == "significance" else k): v for k, v in settings.items()}
        known = {f.name for f in fields(self)}
        unknown = set(settings) - known - set(OTHER_SETTINGS)
        if unknown:
            raise ConfigError(f"unknown gate setting(s) {sorted(unknown)}; known: {sorted(known)}")

        def given(name: str) -> Any:
            value = settings.get(name)
            return getattr(self, name) if value is None else value

        try:
            min_effect, alpha = float(given("min_effect")), float(given("alpha"))
            min_samples, confirm = int(given("min_samples")), float(given("confirm_fraction"))
        except (TypeError, ValueError):
            raise ConfigError(f"gate settings must be numbers, got {dict(settings)}") from None
        return replace(
            self,
            min_effect=min_effect,
            alpha=alpha,
            min_samples=min_samples,
            confirm_fraction=confirm,
        )


@dataclass
class Policies:
    """The default policy plus per-case overrides (by ``case_key``)."""

    default: SpeedPolicy = field(default_factory=SpeedPolicy)
    per_case: dict[str, SpeedPolicy] = field(default_factory=dict)

    def for_case(self, key: str) -> SpeedPolicy:
        return self.per_case.get(key, self.default)


@dataclass
class GateCase:
    """A case to gate, with its suite id and the speed policy it is judged by."""

    case: Case
    id: str
    policy: SpeedPolicy


def gate_cases(suite: Suite, default_policy: SpeedPolicy) -> list[GateCase]:
    """Cases of a loaded suite with their speed policies (suite ``gate:`` settings, then the
    case's own ``min_effect`` where the suite gives one)."""
    policy = default_policy.with_overrides(suite.gate)
    out = []
    for sc in suite.cases:
        own: dict[str, Any] = {}
        if sc.min_effect is not None:
            own["min_effect"] = sc.min_effect
        out.append(GateCase(sc.case, sc.id, policy.with_overrides(own)))
    return out


def suite_policies(suite: Suite, default_policy: SpeedPolicy) -> Policies:
    """The per-case policies of a suite, keyed by case key (for judging stored runs)."""
    cases = gate_cases(suite, default_policy)
    return policies_of(cases, default_policy.with_overrides(suite.gate))


def policies_of(cases: Sequence[GateCase], default: SpeedPolicy) -> Policies:
    return Policies(default, {gc.case.key: gc.policy for gc in cases})
