"""Real-scale benchmark on one GPU: random-weight Qwen2.5-VL-7B in bfloat16 (and the 72B's shape, for memory,
where it fits), AdaptToken and AdaptToken-Lite against the unmodified model on the same frames.

For each model and frame count it reports, per method: seconds per stage (the stage clock with `sync_timing`,
so each stage is charged with its own GPU work), peak GPU memory (`torch.cuda.max_memory_allocated`, reset
before each run), visual tokens and tokens kept, groups visited, and whether the answer's tokens equal the
unmodified model's. Methods:

- `adapttoken`: `selector="adapttoken"`, every group passed;
- `lite`: `selector="adapttoken-lite"` forced to stop after `--lite-groups` groups (`min_groups` = that,
  `theta` = 1e9, so every group's entropy is below it), the same groups on every run;
- `unmodified`: the model's own `generate` on the whole video (or `oom`); its seconds are split into the vision
  tower (timed by hooks on it) and the rest (`final`: the language model's prefill and decoding);
- `full` (not run by default): the `full` selector with `position_rule="transformers"`, every token kept; its
  answer must be the unmodified model's (the check the CPU test makes).

Everything goes through the public API (`adapttoken_plugin.enable`, then the model's unchanged `generate`), on
inputs as the processor writes them: `input_ids` with one video placeholder per visual token, `pixel_values_videos`
(random values in the processor's patch layout: 3 x 2 x 14 x 14 per patch, `--side` x `--side` px frames, frame
pairs as the temporal patch), `video_grid_thw`, `second_per_grid_ts` (2 s per frame pair: 1 fps sampling), a prompt
of random text token ids around the video (no tokenizer: nothing is downloaded). The whole preprocessed video sits
on the GPU for every method (the memory columns include it: `inputs_gib`); decoding is not measured here
(scripts/bench_decoders.py, scripts/bench_memory.py). With random weights the answers mean nothing; the seconds
and the memory are those of the real shapes.

Where the configuration comes from: transformers' `Qwen2_5_VLConfig()` defaults are not the 7B's (its text defaults
are the 72B's shape; its vision defaults have hidden_size 3584 and tokens_per_second 4), so every value is written
in `MODELS` below, from the `config.json` of Qwen/Qwen2.5-VL-7B-Instruct as copied in public repositories (not
downloaded here): text hidden 3584, 28 layers, 28 heads, 4 key-value heads, intermediate 18944, vocabulary 152064,
RMS-norm epsilon 1e-6, rope theta 1e6, mrope_section [16, 24, 24], 128,000 positions, untied embeddings; vision
depth 32, hidden 1280, 16 heads, intermediate 3420, out_hidden 3584, patch 14, spatial merge 2, temporal patch 2,
window 112, full-attention blocks [7, 15, 23, 31], 2 tokens per second; special ids 151652-151656. Built, it has
8.29 B parameters, the 7B checkpoint's count. The 72B's text shape (hidden 8192, 80 layers, 64 heads, 8 key-value
heads, intermediate 29568) is transformers' `Qwen2_5_VLTextConfig` default; its vision tower is the 7B's with
out_hidden 8192 and intermediate 3456 (as third-party copies of the larger Qwen2.5-VL configs give it; not checked
against the 72B checkpoint here): 73.4 B parameters, about 137 GiB in bfloat16. It runs only where its weights
plus `--headroom-gib` fit the GPU's free memory; otherwise its entry under `models` in the JSON says why.

Time: the whole run stays within `--time-limit` seconds (default 450, so that it ends within 8 minutes on one
H200-class GPU). Rows run in order of risk (AdaptToken, Lite, then the unmodified model, at 1,024 frames then
4,096); a row whose estimate (from the same method at the smaller frame count: linear in frames for the group
passes and the vision tower, by FLOPs for the unmodified language model) would not fit the time left is skipped,
and a row still running at the deadline is stopped between two layers (hooks on every vision block and decoder
layer); both say so in the table and the JSON. One process runs every row (building the 7B model once): peak
memory is reset between rows, and an out-of-memory error ends only its row.

`--scale tiny` runs the same code on a scaled configuration (a CPU, float32, seconds), as tests/test_bench_gpu.py
does. `--scale real` refuses to run without a CUDA device.

    python scripts/bench_gpu.py                     # one GPU: 7B at 1,024 and 4,096 frames, 72B if it fits
    python scripts/bench_gpu.py --models 7b --frames 1024 --methods adapttoken lite unmodified full
    python scripts/bench_gpu.py --scale tiny --out runs/bench_gpu_tiny.json    # the same code on a tiny config

Writes the JSON after every row (`--out`) and prints a markdown table at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 2**30
SPECIAL = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
           "vision_end_token_id": 151653}
TEXT_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
               hidden_act="silu", bos_token_id=151643, eos_token_id=151645,
               rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1e6})
VISION_7B = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                 patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                 fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, in_channels=3, hidden_act="silu")
#: (text, vision, special ids) per model and scale; `tiny` keeps the structure (grouped-query heads, windowed
#: vision blocks with full-attention ones, M-RoPE) at CPU size
MODELS: dict[str, dict[str, tuple[dict, dict, dict]]] = {
    "real": {
        "7b": (TEXT_7B, VISION_7B, SPECIAL),
        "72b": ({**TEXT_7B, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                 "num_attention_heads": 64, "num_key_value_heads": 8},
                {**VISION_7B, "out_hidden_size": 8192, "intermediate_size": 3456}, SPECIAL),
    },
    "tiny": {
        "7b": (dict(TEXT_7B, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192, bos_token_id=500,
                    eos_token_id=501, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                                       "rope_theta": 1e6}),
               dict(VISION_7B, depth=4, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                    fullatt_block_indexes=[1, 3]),
               {"image_token_id": 505, "video_token_id": 506, "vision_start_token_id": 502,
                "vision_end_token_id": 503}),
    },
}
MODELS["tiny"]["72b"] = (dict(MODELS["tiny"]["7b"][0], hidden_size=128, intermediate_size=256, num_hidden_layers=6,
                              num_attention_heads=8, num_key_value_heads=2,
                              rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1e6}),
                         dict(MODELS["tiny"]["7b"][1], out_hidden_size=128), MODELS["tiny"]["7b"][2])
#: defaults per scale (each is a flag)
SCALES = {
    "real": {"frames": [1024, 4096], "side": 448, "budget": 7040, "frames_per_group": 64, "lite_groups": 4,
             "dtype": "bfloat16"},
    "tiny": {"frames": [16, 32], "side": 56, "budget": 12, "frames_per_group": 8, "lite_groups": 2,
             "dtype": "float32"},
}
METHODS = ("adapttoken", "lite", "full", "unmodified")
STAGE_NAMES = ("decode", "vision", "prefill", "scoring", "allocation", "final")
PREFIX_TOKENS = 16  # random text ids before the video (a system prompt's worth)


class TimeLimitReached(Exception):
    """Raised by the deadline hooks between two layers: the row is stopped."""


def model_config(scale: str, name: str) -> Any:
    from transformers import Qwen2_5_VLConfig

    text, vision, special = MODELS[scale][name]
    return Qwen2_5_VLConfig(text_config=dict(text), vision_config=dict(vision), tie_word_embeddings=False, **special)


def build(config: Any, device: str, dtype: Any) -> Any:
    """A random-weight model built directly on `device` in `dtype` (sdpa attention, eval mode)."""
    import torch
    from transformers import AutoModelForImageTextToText

    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def weight_bytes(config: Any, dtype: Any) -> int:
    """Bytes of the model's parameters, counted on the `meta` device (nothing allocated)."""
    model = build(config, "meta", dtype)
    return sum(p.numel() * p.element_size() for p in model.parameters())


def make_inputs(config: Any, frames: int, side: int, question_tokens: int, seed: int, device: str, dtype: Any) -> dict:
    """Processor-shaped inputs of one question about `frames` frames of `side` x `side` px (see the module doc)."""
    import torch

    vision = config.vision_config
    patch, merge, pair = vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size
    grid_t, grid = frames // pair, side // patch
    tokens = grid_t * grid * grid // merge**2
    special = {config.video_token_id, config.image_token_id, config.vision_start_token_id,
               config.vision_end_token_id, config.text_config.bos_token_id, config.text_config.eos_token_id}
    gen = torch.Generator().manual_seed(seed)
    vocab = min(config.text_config.vocab_size, 151643)  # regular text ids only (Qwen's special ids start there)
    text = [i for i in torch.randint(0, vocab, (PREFIX_TOKENS + question_tokens + 8,), generator=gen).tolist()
            if i not in special]
    ids = ([*text[:PREFIX_TOKENS], config.vision_start_token_id, *[config.video_token_id] * tokens,
            config.vision_end_token_id, *text[PREFIX_TOKENS:PREFIX_TOKENS + question_tokens]])
    input_ids = torch.tensor([ids], device=device)
    device_gen = torch.Generator(device=device).manual_seed(seed)
    pixels = torch.randn(grid_t * grid * grid, 3 * pair * patch * patch, generator=device_gen, device=device,
                         dtype=dtype)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values_videos": pixels,
        "video_grid_thw": torch.tensor([[grid_t, grid, grid]], device=device),
        "second_per_grid_ts": torch.tensor([float(pair)], device=device),  # 1 fps: one frame pair per 2 s
        "mm_token_type_ids": (input_ids == config.video_token_id).int() * 2,
    }


def visual_tokens(config: Any, frames: int, side: int) -> int:
    vision = config.vision_config
    return frames // vision.temporal_patch_size * (side // vision.patch_size) ** 2 // vision.spatial_merge_size**2


def language_flops(config: Any, tokens: int) -> float:
    """FLOPs of one prefill of `tokens` tokens through the language model: the weights' products plus causal
    attention (scores and values), for the time estimate of an unmodified row."""
    text = config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    per_layer = (2 * text.hidden_size * (text.num_attention_heads + 2 * text.num_key_value_heads) * head_dim
                 + 2 * text.hidden_size * text.hidden_size + 3 * 2 * text.hidden_size * text.intermediate_size)
    attention = 2 * 2 * text.num_attention_heads * head_dim * tokens / 2  # per token, half the keys on average
    return tokens * text.num_hidden_layers * (per_layer + attention)


def estimate_seconds(row: dict, earlier: dict | None, config: Any) -> float:
    """Seconds `row` would take, from the same method's row at a smaller frame count (0: nothing to go by)."""
    if earlier is None or earlier.get("status") != "ok":
        return 0.0
    ratio = row["frames"] / earlier["frames"]
    stages = earlier["seconds_by_stage"]
    if row["method"] == "lite":  # the same groups and the same budget at any length
        return earlier["seconds"]
    if row["method"] in ("unmodified", "full"):  # the language model sees every token: by FLOPs
        llm = language_flops(config, row["visual_tokens"]) / language_flops(config, earlier["visual_tokens"])
        return (earlier["seconds"] - stages["final"]) * ratio + stages["final"] * llm
    return (earlier["seconds"] - stages["final"]) * ratio + stages["final"]


class Deadline:
    """Forward pre-hooks on every vision block and decoder layer that raise `TimeLimitReached` after `at`."""

    def __init__(self, model: Any, at: float) -> None:
        self.at = at
        layers = [*model.model.visual.blocks, *model.get_decoder().layers]
        self.handles = [layer.register_forward_pre_hook(self.check) for layer in layers]

    def check(self, module: Any, args: Any) -> None:
        if time.perf_counter() > self.at:
            raise TimeLimitReached

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def run_method(model: Any, inputs: dict, method: str, args: argparse.Namespace) -> dict:
    """One answer by `method`; the row's measurements (status ok)."""
    import torch

    import adapttoken_plugin as at
    from adapttoken_plugin.timing import StageClock, cuda_devices

    clock = StageClock(cuda_devices(model), sync=True)
    eos = model.config.text_config.eos_token_id
    generate = {"max_new_tokens": args.max_new_tokens, "do_sample": False, "pad_token_id": eos,
                "output_logits": True, "return_dict_in_generate": True}
    prompt_length = inputs["input_ids"].shape[1]
    if method == "unmodified":
        marks: list[float] = []
        visual = model.model.visual
        handles = [visual.register_forward_pre_hook(lambda *_: marks.append(clock.now())),
                   visual.register_forward_hook(lambda *_: marks.append(clock.now()))]
        try:
            start = clock.now()
            with torch.no_grad():
                out = model.generate(**inputs, **generate)
            total = clock.now() - start
        finally:
            for handle in handles:
                handle.remove()
        vision = sum(b - a for a, b in zip(marks[::2], marks[1::2]))
        stages = dict.fromkeys(STAGE_NAMES, 0.0) | {"vision": vision, "final": total - vision}
        tokens = int((inputs["input_ids"] == model.config.video_token_id).sum())
        return {"seconds": total, "seconds_by_stage": stages, "kept_tokens": tokens, "groups": None,
                "groups_visited": None, **answer(out, prompt_length)}
    settings = {"budget": args.budget, "frames_per_group": args.frames_per_group, "sync_timing": True}
    settings |= {"adapttoken": {"selector": "adapttoken"},
                 "lite": {"selector": "adapttoken-lite", "min_groups": args.lite_groups, "theta": 1e9},
                 "full": {"selector": "full", "position_rule": "transformers"}}[method]
    if method == "full":  # `full` reads neither: left at their defaults (no warning for an ignored setting)
        del settings["budget"], settings["frames_per_group"]
    at.enable(model, settings)
    try:
        start = clock.now()
        with torch.no_grad():
            out = model.generate(**inputs, **generate)
        total = clock.now() - start
        trace = model.adapttoken_trace
    finally:
        at.disable(model)
    return {"seconds": total, "seconds_by_stage": dict(trace.seconds), "kept_tokens": trace.kept_tokens,
            "groups": len(trace.groups), "groups_visited": trace.groups_visited, **answer(out, prompt_length)}


def answer(out: Any, prompt_length: int) -> dict:
    """The generated token ids, and the five most likely first tokens with their logits (float32)."""
    top = out.logits[0][0].float().topk(5)
    return {"answer_ids": out.sequences[0, prompt_length:].tolist(), "first_step_top_ids": top.indices.tolist(),
            "first_step_top_logits": top.values.tolist()}


def free_memory(on_cuda: bool) -> None:
    import torch

    gc.collect()
    if on_cuda:
        torch.cuda.empty_cache()


def run_row(model: Any, inputs: dict, row: dict, args: argparse.Namespace, deadline: float, on_cuda: bool) -> dict:
    """Fill `row` by running its method with the memory counters reset and the deadline hooks in place."""
    import torch

    free_memory(on_cuda)
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
        row["inputs_gib"] = torch.cuda.memory_allocated() / GIB  # the weights and the preprocessed video
    hooks = Deadline(model, deadline)
    started = time.perf_counter()
    try:
        row |= run_method(model, inputs, row["method"], args) | {"status": "ok"}
    except TimeLimitReached:
        row |= {"status": f"stopped at the time limit after {time.perf_counter() - started:.0f} s"}
    except torch.cuda.OutOfMemoryError as error:
        first_line = str(error).splitlines()[0] if str(error) else "out of memory"
        row |= {"status": "oom", "error": first_line[:300]}
    finally:
        hooks.remove()
        if on_cuda:
            row["peak_gib"] = torch.cuda.max_memory_allocated() / GIB
            row["peak_over_inputs_gib"] = row["peak_gib"] - row["inputs_gib"]
        free_memory(on_cuda)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="real",
                        help="`real`: the checkpoints' shapes (needs a GPU); `tiny`: the same code at CPU size")
    parser.add_argument("--models", nargs="+", choices=["7b", "72b"], default=["7b", "72b"],
                        help="72b runs only where its weights plus --headroom-gib fit the GPU")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["adapttoken", "lite", "unmodified"])
    parser.add_argument("--frames", type=int, nargs="+", help="frame counts, even (default: 1024 4096; tiny: 16 32)")
    parser.add_argument("--side", type=int, help="frame side in px, a multiple of 28 (default 448; tiny 56)")
    parser.add_argument("--budget", type=int, help="visual tokens kept (default 7040; tiny 12)")
    parser.add_argument("--frames-per-group", type=int, help="frames per group (default 64; tiny 8)")
    parser.add_argument("--lite-groups", type=int, help="groups Lite visits before it stops (default 4; tiny 2)")
    parser.add_argument("--question-tokens", type=int, default=32, help="text tokens after the video")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="tokens generated per answer")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"],
                        help="default bfloat16 (tiny: float32, on the CPU)")
    parser.add_argument("--device", help="default: cuda when available, else cpu (tiny only)")
    parser.add_argument("--time-limit", type=float, default=450.0, help="seconds for the whole run (see above)")
    parser.add_argument("--headroom-gib", type=float, default=20.0,
                        help="GPU memory a model must leave free beyond its weights to be run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_gpu.json")
    args = parser.parse_args(argv)
    for name, value in SCALES[args.scale].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if any(f < 2 or f % 2 for f in args.frames):
        parser.error(f"--frames {args.frames}: every count must be even and >= 2 (frames go in pairs)")
    if args.side < 28 or args.side % 28:
        parser.error(f"--side {args.side}: must be a positive multiple of 28 px (14 px patches merged 2 x 2)")
    for name in ("budget", "frames_per_group", "lite_groups", "question_tokens", "max_new_tokens"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    if args.time_limit <= 0:
        parser.error(f"--time-limit {args.time_limit}: must be > 0 seconds")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    deadline = started + args.time_limit
    import torch
    import transformers

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda and not torch.cuda.is_available():
        sys.exit(f"bench_gpu.py: error: --device {device}: no CUDA device is available here")
    if args.scale == "real" and not on_cuda:
        sys.exit("bench_gpu.py: error: --scale real needs a CUDA device (the 7B model on the CPU would take hours); "
                 "use --scale tiny to run the same code on a scaled configuration")
    if not on_cuda:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    out: dict[str, Any] = {
        "scale": args.scale, "device": torch.cuda.get_device_name(device) if on_cuda else platform.processor() or "cpu",
        "dtype": args.dtype, "torch": torch.__version__, "transformers": transformers.__version__,
        "time_limit_s": args.time_limit, "settings": {k: getattr(args, k) for k in (
            "frames", "side", "budget", "frames_per_group", "lite_groups", "question_tokens", "max_new_tokens",
            "methods", "seed")},
        "models": {}, "rows": [],
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every row: a run stopped midway keeps what it measured
        out["elapsed_s"] = time.perf_counter() - started
        path.write_text(json.dumps(out, indent=1))

    for name in args.models:
        config = model_config(args.scale, name)
        text, vision, _ = MODELS[args.scale][name]
        info: dict[str, Any] = {"text_config": text, "vision_config": vision,
                                "weights_gib": weight_bytes(config, dtype) / GIB}
        out["models"][name] = info
        if on_cuda:
            free_memory(on_cuda)
            free, total = torch.cuda.mem_get_info(device)
            info |= {"gpu_free_gib": free / GIB, "gpu_total_gib": total / GIB}
            if info["weights_gib"] + args.headroom_gib > free / GIB:
                info["status"] = (f"not run: its weights take {info['weights_gib']:.1f} GiB and {args.headroom_gib:g} "
                                  f"GiB of headroom are asked for, {free / GIB:.1f} GiB of the GPU are free")
                print(f"{name}: {info['status']}", file=sys.stderr)
                save()
                continue
        torch.manual_seed(args.seed)
        build_start = time.perf_counter()
        model = build(config, device, dtype)
        info |= {"build_seconds": time.perf_counter() - build_start, "status": "run",
                 "parameters": sum(p.numel() for p in model.parameters())}
        for frames in sorted(args.frames):
            inputs = make_inputs(config, frames, args.side, args.question_tokens, args.seed, device, dtype)
            tokens = visual_tokens(config, frames, args.side)
            block: list[dict] = []
            for method in sorted(args.methods, key=METHODS.index):  # the unmodified model last: it may run out
                row = {"model": name, "frames": frames, "side": args.side, "method": method, "visual_tokens": tokens,
                       "budget": None if method in ("unmodified", "full") else args.budget,
                       "peak_gib": None, "inputs_gib": None, "peak_over_inputs_gib": None,
                       "same_answer_as_unmodified": None}
                earlier = max((r for r in out["rows"] if r["model"] == name and r["method"] == method
                               and r["frames"] < frames), key=lambda r: r["frames"], default=None)
                guess, left = estimate_seconds(row, earlier, config), deadline - time.perf_counter()
                if left <= 0:
                    row["status"] = "skipped: the time limit was reached"
                elif guess > left:
                    row["status"] = f"skipped: estimated {guess:.0f} s, {left:.0f} s left"
                else:
                    row["estimated_seconds"] = guess or None
                    run_row(model, inputs, row, args, deadline, on_cuda)
                print(json.dumps(row), file=sys.stderr)
                block.append(row)
                out["rows"].append(row)
                save()
            reference = next((r for r in block if r["method"] == "unmodified" and r["status"] == "ok"), None)
            for row in block:
                if row["status"] == "ok" and reference is not None:
                    row["same_answer_as_unmodified"] = row["answer_ids"] == reference["answer_ids"]
            del inputs
            save()
        del model
        free_memory(on_cuda)
    save()
    print(table(out))
    print(f"\n{out['elapsed_s']:.0f} s in all (limit {args.time_limit:.0f} s); written: {path}")
    return out


def table(out: dict) -> str:
    """The markdown table of every row, then the models that were not run."""
    settings = out["settings"]
    lines = [f"{out['device']}, {out['dtype']}, {settings['side']} x {settings['side']} px frames, budget "
             f"{settings['budget']}, {settings['frames_per_group']} frames per group, Lite stopped after "
             f"{settings['lite_groups']} groups",
             "", "| model | frames | method | status | visual tokens | kept | groups visited | "
             + " | ".join(STAGE_NAMES) + " | total s | peak GiB | of which inputs GiB | same answer as unmodified |",
             "|" + "---|" * (11 + len(STAGE_NAMES))]

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for r in out["rows"]:
        ok = r["status"] == "ok"
        cells = [r["model"], r["frames"], r["method"], r["status"], r["visual_tokens"],
                 r["kept_tokens"] if ok else "-",
                 f"{r['groups_visited']} / {r['groups']}" if ok and r["groups"] else "-",
                 *(number(r["seconds_by_stage"][s] if ok else None, 2) for s in STAGE_NAMES),
                 number(r["seconds"] if ok else None, 2), number(r["peak_gib"], 1), number(r["inputs_gib"], 1),
                 {True: "yes", False: "no", None: "-"}[r["same_answer_as_unmodified"]]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for name, info in out["models"].items():
        if info["status"].startswith("not run"):
            lines.append(f"\n{name}: {info['status']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
