"""Per-checkpoint settings: scoring layer, frames per group and budget of the known checkpoints.

One mapping table, looked up by the checkpoint name a loaded model carries in its config
(`_name_or_path`, e.g. `Qwen/Qwen2.5-VL-7B-Instruct` or a local `/models/Qwen2.5-VL-7B-Instruct`):
the last path component, lower-cased, with a trailing `-hf` (the transformers-native ports) removed.

The values are FlexSelect's, found by needle probing (`scripts/probe_layer.py` reruns that probe),
and, for the bundled toy model, what that script measured on it.
`ModelAdapter.default_scoring_layer` uses the scoring layer when `AdaptTokenConfig.scoring_layer` is
None and the model's depth matches the preset; every other model gets round(0.7 * depth). Budget and
frames per group are listed for reference (`preset_for(model)`); the config's own defaults are not
changed by a preset, and a setting the user gives always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelPreset:
    """Settings found for one checkpoint.

    Attributes:
        num_layers: decoder depth of the checkpoint; the preset applies only to a model this deep.
        scoring_layer: decoder layer whose attention ranks visual tokens.
        frames_per_group: frames per group.
        budget: visual tokens that reach the final pass.
        source: where the values come from.
    """

    num_layers: int
    scoring_layer: int
    frames_per_group: int
    budget: int
    source: str = "FlexSelect"


PRESETS: dict[str, ModelPreset] = {
    "qwen2.5-vl-7b-instruct": ModelPreset(num_layers=28, scoring_layer=20, frames_per_group=64, budget=7040),
    "internvl2_5-8b": ModelPreset(num_layers=32, scoring_layer=15, frames_per_group=64, budget=8256),
    "llava-video-7b-qwen2": ModelPreset(num_layers=28, scoring_layer=19, frames_per_group=64, budget=6720),
    # the bundled trained toy model (adapttoken_plugin/assets/needle-toy): scripts/probe_layer.py --model
    # adapttoken_plugin/assets/needle-toy --frames 128 --trials 16 --needle-units 2 gave needle recall
    # 0.73 / 0.94 / 0.90 / 0.41 for layers 0-3, so layer 1, not round(0.7 * 4) = 3; budget: the demo's
    "needle-toy": ModelPreset(num_layers=4, scoring_layer=1, frames_per_group=64, budget=128,
                              source="scripts/probe_layer.py"),
    # the bundled tasks toy model (adapttoken_plugin/assets/tasks-toy): scripts/probe_layer.py --model
    # adapttoken_plugin/assets/tasks-toy --frames 128 --size 112 --trials 16 --needle-units 2 gave needle recall
    # 0.55 / 0.75 / 0.49 / 0.47 for layers 0-3 (chance 0.03), so layer 1; frames per group and budget: what
    # scripts/bench_tasks.py uses (32 frames, 1/16 of a 256-frame video's 2,048 tokens)
    "tasks-toy": ModelPreset(num_layers=4, scoring_layer=1, frames_per_group=32, budget=128,
                             source="scripts/probe_layer.py"),
}


def checkpoint_key(name: str | None) -> str | None:
    """`org/Model-Name-hf` or a local path -> `model-name`, the key of `PRESETS` (None for no name)."""
    if not name:
        return None
    base = str(name).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].lower()
    return base.removesuffix("-hf") or None


def preset_for(model: Any) -> ModelPreset | None:
    """The preset of `model`'s checkpoint (read from `model.config`), or None for an unknown checkpoint."""
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
    key = checkpoint_key(name)
    return PRESETS.get(key) if key else None
