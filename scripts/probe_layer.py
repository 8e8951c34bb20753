"""Needle probe: at which decoder layer does the text's attention find a needle frame?

The way FlexSelect picked its scoring layers (the values in `adapttoken_plugin/presets.py`). For each
trial a synthetic video (`adapttoken_plugin.needle`: noise and distractor shapes) holds one needle
event, a large shape in an option colour over whole frame units, and the model is asked the needle
question. One prefill over the whole video records every decoder layer's cross-modal attention at
once with the plugin's own scoring hook (`scoring.capture_scores`: the text rows after the video,
recomputed from the layer's inputs; the model keeps sdpa, nothing is eager). Per layer it reports
how many of the needle units' k visual tokens rank in that layer's top k, averaged over trials.
Pick the layer with the highest recall (FlexSelect: about 0.7 of the depth) and pass it as
`AdaptTokenConfig(scoring_layer=...)`, or add it to `presets.PRESETS`.

    python scripts/probe_layer.py                 # tiny random-weight toy model: checks the plumbing only
    python scripts/probe_layer.py --model Qwen/Qwen2.5-VL-7B-Instruct --frames 64 --size 336 --trials 8

Works for every registered family (`adapter_for(model)`). Prints a table; writes JSON (--json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.config import AdaptTokenConfig
from adapttoken_plugin.needle import VIDEO_FPS, iter_frames, make_question
from adapttoken_plugin.pipeline import format_question
from adapttoken_plugin.scoring import capture_scores


def load(model_path: str | None, device: str, dtype: str) -> tuple[Any, Any, str]:
    """(model, processor, name): a checkpoint through the Auto classes, or the tiny random toy model."""
    if model_path is None:
        from adapttoken_plugin.toy import toy_model, toy_processor

        return toy_model(), toy_processor(), "toy (random weights)"
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device).eval()
    return model, AutoProcessor.from_pretrained(model_path), model_path


def video_inputs(processor: Any, frames: np.ndarray, question: str) -> dict[str, Any]:
    """The processor's output for a user message holding the video then the question."""
    from transformers.video_utils import VideoMetadata

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    metadata = VideoMetadata(total_num_frames=len(frames), fps=VIDEO_FPS, frames_indices=list(range(len(frames))))
    return dict(processor(text=[text], videos=[frames], return_tensors="pt", do_sample_frames=False,
                          video_metadata=[metadata]))


@torch.no_grad()
def probe_trial(model: Any, processor: Any, seed: int, num_frames: int, size: int, needle_units: int,
                reduce: str = "max", position_rule: str = "original") -> dict[str, Any]:
    """One needle video: per decoder layer, how many needle tokens rank in the layer's top k (k = needle tokens)."""
    adapter = adapter_for(model, AdaptTokenConfig(position_rule=position_rule))
    fpu = adapter.frames_per_unit
    q = make_question(seed, num_frames, needle_length=needle_units * fpu)
    q = dataclasses.replace(q, needle_start=q.needle_start - q.needle_start % fpu)  # whole frame units
    frames = np.stack(list(iter_frames(q, side=size)))
    inputs = video_inputs(processor, frames, format_question(q.question, q.options))
    prompt, layout, pixels = adapter.split_inputs(inputs)
    units = torch.arange(layout.num_units)
    token_ids = layout.token_ids_of_units(units)
    features = adapter.encode(adapter.unit_pixels(pixels, layout, units))
    model_inputs = adapter.model_inputs(prompt, layout, token_ids, features)
    columns = adapter.visual_columns(prompt, layout, token_ids)
    seq_len = model_inputs["input_ids"].shape[1]
    with ExitStack() as stack:
        captures = [stack.enter_context(capture_scores(adapter, layer, len(prompt.suffix_ids), columns, reduce,
                                                       seq_len)) for layer in range(adapter.num_layers)]
        model(**model_inputs, logits_to_keep=1, use_cache=False)
    needle_units_ids = torch.tensor(sorted({f // fpu for f in q.needle_frames}))
    needle = layout.token_ids_of_units(needle_units_ids)
    k = len(needle)
    hits = [int(torch.isin(torch.topk(c.scores.cpu(), k).indices, needle).sum()) for c in captures]
    return {"seed": seed, "needle_frames": q.needle_frames, "needle_units": needle_units_ids.tolist(),
            "visual_tokens": len(token_ids), "k": k, "hits": hits}


def summarise(trials: list[dict[str, Any]], num_layers: int) -> list[dict[str, Any]]:
    """Per layer: mean needle tokens in the top k, and recall (their share of k), over trials."""
    rows = []
    for layer in range(num_layers):
        hits = [t["hits"][layer] for t in trials]
        rows.append({"layer": layer, "mean_hits": float(np.mean(hits)),
                     "recall": float(np.mean([h / t["k"] for h, t in zip(hits, trials)]))})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint (hub id or local path) of a supported class; "
                                        "default: the tiny random-weight toy model")
    parser.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    parser.add_argument("--size", type=int, default=56, help="frame side in pixels (default 56)")
    parser.add_argument("--needle-units", type=int, default=1,
                        help="frame units the needle covers (a unit: 2 frames for Qwen, 1 otherwise; default 1)")
    parser.add_argument("--trials", type=int, default=4, help="needle videos, each with its own position (default 4)")
    parser.add_argument("--reduce", choices=("max", "mean"), default="max",
                        help="reduce attention over heads and text queries, as score_reduce (default max)")
    parser.add_argument("--position-rule", choices=("original", "transformers"), default="original",
                        help="where Qwen2/2.5-VL text after the video starts, as position_rule (default original)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="weights' dtype for --model (default float32)")
    parser.add_argument("--json", type=Path, default=Path("runs/probe_layer.json"), help="where to write the results")
    args = parser.parse_args(argv)

    model, processor, name = load(args.model, args.device, args.dtype)
    adapter = adapter_for(model)
    trials = [probe_trial(model, processor, args.seed * 1_000 + t, args.frames, args.size, args.needle_units,
                          args.reduce, args.position_rule) for t in range(args.trials)]
    rows = summarise(trials, adapter.num_layers)
    best = max(rows, key=lambda r: (r["recall"], -r["layer"]))["layer"]
    result = {"model": name, "adapter": adapter.registry_name, "num_layers": adapter.num_layers,
              "default_scoring_layer": adapter.default_scoring_layer(), "best_layer": best,
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "layers": rows, "trials": trials}

    k = trials[0]["k"]
    print(f"{name} ({adapter.registry_name}, {adapter.num_layers} layers): needle tokens in each layer's top k "
          f"(k = {k} of {trials[0]['visual_tokens']} visual tokens), {len(trials)} trials")
    print(f"{'layer':>5}  {'in top k':>8}  {'recall':>6}")
    for row in rows:
        marks = " <- best" if row["layer"] == best else ""
        marks += " (default scoring layer)" if row["layer"] == result["default_scoring_layer"] else ""
        print(f"{row['layer']:>5}  {row['mean_hits']:>8.2f}  {row['recall']:>6.2f}{marks}")
    note = " (random weights: expect chance everywhere)" if args.model is None else ""
    print(f"chance recall: {k / trials[0]['visual_tokens']:.2f}{note}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
