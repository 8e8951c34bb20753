import numpy as np

from adapttoken_plugin.report import render_report
from adapttoken_plugin.trace import GroupTrace, Trace


def test_report_outlines_exactly_the_kept_cells():
    # 3 units of 2 x 3 tokens; kept: unit 0 cells 0 and 5, unit 2 cell 4
    trace = Trace(selector="adapttoken", config={"budget": 3}, num_frames=6, num_units=3, tokens_per_unit=6,
                  total_tokens=18, kept_tokens=3, kept_token_ids=[0, 5, 16], grid_w=3,
                  groups=[GroupTrace(0, [0, 1, 4, 5], 12, True, 0.1, 2, 2), GroupTrace(1, [2, 3], 6, True, 1.3, 1, 1)])
    frames = {u: np.full((56, 84, 3), 40 * u, np.uint8) for u in range(3)}
    page = render_report(trace, frames, title="t <x>", answer="B")
    assert page.count("<figure>") == 2 and "unit 1" not in page
    assert page.count("class='tok'") == 3
    # cell 5 of a 2 x 3 grid: column 2, row 1
    assert "left:66.667%;top:50.000%;width:33.333%;height:50.000%" in page
    assert "left:0.000%;top:0.000%" in page and "left:33.333%;top:50.000%" in page  # cells 0 and 4
    assert "t &lt;x&gt;" in page and "0.100" in page and "1.300" in page
