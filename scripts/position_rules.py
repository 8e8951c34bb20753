"""Where the text after a Qwen2.5-VL video starts under each `position_rule`, and what it changes.

Prints the first text position after the video and the video's largest temporal position for a few
video lengths (frame pairs), computed by the adapter and, for `transformers`, checked against the
installed transformers' own `get_rope_index`; then the change in the toy model's next-token
distribution between the two rules.

    python scripts/position_rules.py
"""

from __future__ import annotations

import torch

from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.config import POSITION_RULES, AdaptTokenConfig
from adapttoken_plugin.toy import toy_model


def main() -> None:
    model = toy_model()
    adapter = adapter_for(model)
    by_rule = {rule: adapter_for(model, AdaptTokenConfig(position_rule=rule)) for rule in POSITION_RULES}
    vid = model.config.video_token_id
    print("| frame pairs | grid (tokens) | last video t | text starts: original | text starts: transformers "
          "| get_rope_index agrees | max abs logit diff | same next token |")
    print("|---|---|---|---|---|---|---|---|")
    torch.manual_seed(0)
    for units in (1, 8, 64, 512):
        grid_h, grid_w = 4, 4  # patches; 2 x 2 tokens per frame pair
        n_tok = units * grid_h * grid_w // 4
        ids = torch.tensor([[5, 6, 7, model.config.vision_start_token_id] + [vid] * n_tok
                            + [model.config.vision_end_token_id, 8, 9, 10]])
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                  "pixel_values_videos": torch.randn(units * grid_h * grid_w, 1176),
                  "video_grid_thw": torch.tensor([[units, grid_h, grid_w]]),
                  "second_per_grid_ts": torch.tensor([1.0]), "mm_token_type_ids": (ids == vid).int() * 2}
        ref, _ = model.model.get_rope_index(ids, inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
                                            second_per_grid_ts=inputs["second_per_grid_ts"])
        prompt, layout, pixels = adapter.split_inputs(dict(inputs))
        all_ids = torch.arange(layout.num_tokens)
        with torch.no_grad():
            feats = adapter.encode(adapter.unit_pixels(pixels, layout, torch.arange(units)))
            logits = {}
            for rule in POSITION_RULES:
                logits[rule] = model(**by_rule[rule].model_inputs(prompt, layout, all_ids, feats)).logits[0, -1]
        pos = {rule: by_rule[rule].positions(prompt, layout, all_ids) for rule in logits}
        n_suffix = len(prompt.suffix_ids)
        agrees = torch.equal(pos["transformers"], ref[:, 0])
        diff = (logits["original"] - logits["transformers"]).abs().max().item()
        same = logits["original"].argmax().item() == logits["transformers"].argmax().item()
        print(f"| {units} | 2x2 | {int(pos['original'][0, 4 + n_tok - 1])} | {int(pos['original'][0, -n_suffix])} "
              f"| {int(pos['transformers'][0, -n_suffix])} | {agrees} | {diff:.3g} | {same} |")


if __name__ == "__main__":
    main()
