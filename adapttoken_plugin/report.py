"""A self-contained HTML report of one selection: what was looked at, what was kept, and why.

- a timeline of the groups: entropy (lower = more confident) and the budget each group received;
- thumbnails of the frame units that kept tokens, in temporal order, with the kept tokens' cells
  outlined on the frame (each visual token covers one cell of the unit's grid);
- the answer, the settings and the seconds per stage.

Thumbnails are PNGs inlined as data URIs (Pillow encodes them), so the page is one file.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from pathlib import Path

import numpy as np

from .trace import Trace


def _png_data_uri(frame: np.ndarray) -> str:
    # Pillow comes with torchvision (a requirement): the report needs no plotting package
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_report(trace: Trace, frames: dict[int, np.ndarray], title: str, answer: str | None = None,
                  max_units: int = 64) -> str:
    """HTML of the report. `frames` maps a frame unit to one decoded frame (H, W, 3) uint8 of it."""
    grid_w = trace.grid_w
    grid_h = trace.tokens_per_unit // grid_w
    kept_by_unit: dict[int, list[int]] = {}
    for token in trace.kept_token_ids:
        kept_by_unit.setdefault(token // trace.tokens_per_unit, []).append(token % trace.tokens_per_unit)
    shown = sorted(sorted(kept_by_unit, key=lambda u: -len(kept_by_unit[u]))[:max_units])

    max_budget = max([g.budget or 0 for g in trace.groups] + [1])
    rows = []
    for g in trace.groups:
        entropy = "-" if g.entropy is None else f"{g.entropy:.3f}"
        ent_w = 0 if g.entropy is None else min(100, 100 * g.entropy / 1.5)
        bud_w = 100 * (g.budget or 0) / max_budget
        rows.append(
            f"<tr class='{'visited' if g.visited else 'skipped'}'><td>{g.group_id}</td><td>{len(g.frames)}</td>"
            f"<td>{g.frames[0]}..{g.frames[-1]}</td><td>{entropy}<div class='bar ent' style='width:{ent_w:.0f}%'>"
            f"</div></td><td>{g.budget if g.budget is not None else '-'}<div class='bar bud' "
            f"style='width:{bud_w:.0f}%'></div></td><td>{g.kept}</td></tr>"
        )
    tiles = []
    for unit in shown:
        frame = frames.get(unit)
        if frame is None:
            continue
        boxes = "".join(
            f"<div class='tok' style='left:{100 * (c % grid_w) / grid_w:.3f}%;top:{100 * (c // grid_w) / grid_h:.3f}%;"
            f"width:{100 / grid_w:.3f}%;height:{100 / grid_h:.3f}%'></div>" for c in kept_by_unit[unit]
        )
        tiles.append(f"<figure><div class='thumb'><img src='{_png_data_uri(frame)}' alt='unit {unit}'>{boxes}</div>"
                     f"<figcaption>unit {unit} &middot; {len(kept_by_unit[unit])} kept</figcaption></figure>")
    per_unit = Counter(len(v) for v in kept_by_unit.values())
    seconds = ", ".join(f"{k} {v:.2f}s" for k, v in trace.seconds.items())
    settings = ", ".join(f"{k}={v}" for k, v in trace.config.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right; min-width: 4rem; }}
tr.skipped {{ color: #999; }}
.bar {{ height: 6px; margin-top: 2px; }} .ent {{ background: #d9822b; }} .bud {{ background: #2b7bd9; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; font-size: 0.75rem; text-align: center; }}
.thumb {{ position: relative; width: 112px; height: 112px; }}
.thumb img {{ width: 100%; height: 100%; image-rendering: pixelated; display: block; }}
.tok {{ position: absolute; box-sizing: border-box; border: 2px solid #00e0ff; background: rgba(0, 224, 255, 0.15); }}
.meta {{ font-size: 0.8rem; color: #555; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><b>answer:</b> {html.escape(answer or '-')} &nbsp; <b>selector:</b> {html.escape(trace.selector)} &nbsp;
<b>kept</b> {trace.kept_tokens} of {trace.total_tokens} visual tokens from {len(kept_by_unit)} of
{trace.num_units} frame units; {trace.groups_visited} of {len(trace.groups)} groups visited</p>
<h2>Groups</h2>
<table><tr><th>group</th><th>frames</th><th>first..last</th><th>entropy (nats)</th><th>budget</th><th>kept</th></tr>
{''.join(rows)}</table>
<h2>Kept tokens</h2>
<p class="meta">Frame units holding kept tokens (the {len(tiles)} with most kept tokens, in temporal order);
outlined cells are the kept tokens. Tokens kept per unit: {dict(sorted(per_unit.items()))}.</p>
<div class="tiles">{''.join(tiles)}</div>
<p class="meta">seconds: {html.escape(seconds)}</p>
<p class="meta">settings: {html.escape(settings)}</p>
</body></html>
"""


def write_report(path: str | Path, trace: Trace, video: str | Path, title: str, answer: str | None = None,
                 backend: str = "auto", max_units: int = 64) -> Path:
    """Decode one frame of each shown unit (at the model's resolution) and write the HTML report."""
    from .video import FrameReader

    if trace.frame_indices is None or trace.frame_size is None:
        raise ValueError("the trace has no frame indices / size: reports need a trace from the streaming pipeline")
    kept_units = Counter(t // trace.tokens_per_unit for t in trace.kept_token_ids)
    units = sorted(u for u, _ in kept_units.most_common(max_units))
    fpu = trace.num_frames // trace.num_units
    wanted = [trace.frame_indices[u * fpu] for u in units]
    with FrameReader(video, backend=backend, size=tuple(trace.frame_size)) as reader:
        decoded = reader.read(wanted) if wanted else np.zeros((0, 1, 1, 3), np.uint8)
    page = render_report(trace, dict(zip(units, decoded)), title, answer, max_units)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
