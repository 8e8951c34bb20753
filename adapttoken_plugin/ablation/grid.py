"""The ablation grid: selectors x budgets x tau x theta x scoring layer x frames per group.

An axis a selector does not read is not expanded for it (uniform has no tau, only Lite has a theta),
so no run repeats another with a setting that cannot change it; that axis is None in its `RunSpec`.
Which axes a selector reads comes from its own declaration (`Selector.settings_read()`).
Budgets are tokens ("512") or a fraction of the video's visual tokens ("1/16"). Any other selection or
group-pass setting a selector declares (`evs_threshold`, `early_layer`, ...) is an axis too (`Grid.vary`,
`adapttoken ablate --vary KEY=V1,V2`), expanded only for the selectors that read it.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from ..config import INT_LIMIT, AdaptTokenConfig, settings_in
from ..errors import ConfigError
from ..registry import SELECTORS

AXES = ("budget", "tau", "theta", "scoring_layer", "frames_per_group")


def axes_read(selector: str) -> tuple[str, ...]:
    """The grid axes the registered `selector` reads (from its declaration), in AXES order."""
    read = SELECTORS.get(selector).settings_read()
    return tuple(axis for axis in AXES if axis in read)


@dataclass(frozen=True)
class Grid:
    """Values of each axis; an empty axis means the base config's value (budget: the base budget).

    `vary`: more axes, ((setting, (value, ...)), ...) for selection or group-pass settings outside AXES
    (values coerced to the setting's type, as `AdaptTokenConfig` does).
    """

    selectors: tuple[str, ...]
    budgets: tuple[str, ...] = ()
    tau: tuple[float, ...] = ()
    theta: tuple[float, ...] = ()
    scoring_layer: tuple[int, ...] = ()
    frames_per_group: tuple[int, ...] = ()
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not self.selectors:
            raise ConfigError("the grid needs at least one selector")
        for name in self.selectors:
            SELECTORS.get(name)  # RegistryError names the known selectors
        for spec in self.budgets:
            budget_fraction(spec)
        for axis in AXES[1:]:  # each value as the config checks it, before any run
            for value in getattr(self, axis):
                AdaptTokenConfig(**{axis: value})
        allowed = set(settings_in("selection", "group pass")) - {*AXES, "selector"}
        coerced = []
        for name, values in self.vary:
            if name not in allowed:
                raise ConfigError(f"--vary {name}: not a setting the grid can vary; one of {sorted(allowed)} "
                                  f"(budget, tau, theta, scoring_layer and frames_per_group have their own flags)")
            if not values:
                raise ConfigError(f"--vary {name}: give at least one value")
            coerced.append((name, tuple(AdaptTokenConfig().replace(**{name: v}).to_dict()[name] for v in values)))
        object.__setattr__(self, "vary", tuple(coerced))


@dataclass(frozen=True)
class RunSpec:
    """One point of the grid; None for an axis the selector does not read."""

    selector: str
    budget: str | None
    tau: float | None
    theta: float | None
    scoring_layer: int | None
    frames_per_group: int | None
    settings: str = ""  # the `vary` axes this selector reads, "name=value, ..." (empty: none)

    @property
    def needs_group_pass(self) -> bool:
        return SELECTORS.get(self.selector).needs_group_pass

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config(self, base: AdaptTokenConfig, total_tokens: int) -> AdaptTokenConfig:
        """The run's config for a video of `total_tokens` visual tokens: the base with this point's values."""
        values: dict[str, Any] = {"selector": self.selector}
        if self.budget is not None:
            values["budget"] = resolve_budget(self.budget, total_tokens)
        for axis in AXES[1:]:
            if getattr(self, axis) is not None:
                values[axis] = getattr(self, axis)
        return base.replace(**values, **self.setting_values())

    def setting_values(self) -> dict[str, str]:
        """The `vary` axes of this run as {setting: value string} (coerced by the config)."""
        return dict(part.split("=", 1) for part in self.settings.split(", ")) if self.settings else {}


def budget_fraction(spec: str) -> Fraction | int:
    """"1/16" -> Fraction(1, 16) of the video's tokens; "512" -> 512 tokens. Bad specs raise ConfigError."""
    text = str(spec).strip()
    try:
        if "/" in text:
            value = Fraction(text)
            if 0 < value <= 1:
                return value
        elif 0 < int(text) <= INT_LIMIT:
            return int(text)
    except (ValueError, ZeroDivisionError):  # "half", "1/0"
        pass
    raise ConfigError(f"budget {spec!r} is not a token count > 0 (\"512\") or a fraction in (0, 1] (\"1/16\")")


def canonical_budget(spec: str) -> str:
    """One spelling per budget: "0512" -> "512", "2/32" -> "1/16", "1/1" stays a fraction."""
    value = budget_fraction(spec)
    return f"{value.numerator}/{value.denominator}" if isinstance(value, Fraction) else str(value)


def resolve_budget(spec: str, total_tokens: int) -> int:
    """Tokens of a budget spec for a video of `total_tokens` visual tokens (a fraction keeps at least 1)."""
    value = budget_fraction(spec)
    if isinstance(value, Fraction):
        return max(1, int(total_tokens * value))
    return value


def expand_grid(grid: Grid, base: AdaptTokenConfig, default_scoring_layer: int) -> list[RunSpec]:
    """Every run of the grid, in a fixed order (selectors as given, then the axes in AXES order).

    `default_scoring_layer` fills the scoring-layer axis when the grid and the base config leave it
    open (the model's default), so a run names the layer it used.
    """
    defaults = {
        "budget": (str(base.budget),), "tau": (base.tau,), "theta": (base.theta,),
        "scoring_layer": (default_scoring_layer if base.scoring_layer is None else base.scoring_layer,),
        "frames_per_group": (base.frames_per_group,),
    }
    given = {"budget": tuple(canonical_budget(b) for b in grid.budgets), "tau": grid.tau, "theta": grid.theta,
             "scoring_layer": grid.scoring_layer, "frames_per_group": grid.frames_per_group}
    runs: list[RunSpec] = []
    for name in grid.selectors:
        read = axes_read(name)
        values = [tuple(dict.fromkeys(given[a] or defaults[a])) if a in read else (None,) for a in AXES]
        reads = SELECTORS.get(name).settings_read()
        extra = [(setting, tuple(dict.fromkeys(vals))) for setting, vals in grid.vary if setting in reads]
        extra_points = itertools.product(*[[f"{s}={v}" for v in vals] for s, vals in extra])
        for point, more in itertools.product(list(itertools.product(*values)), list(extra_points)):
            runs.append(RunSpec(name, *point, settings=", ".join(more)))
    return runs
