"""Memory and time of the streaming pipeline on the bundled toy model: what the frame cache holds, what decoding
in the background saves, what a second question on the same video costs.

Sections (each prints a markdown table; everything is written to one JSON file):

- `memory`: peak RSS of one AdaptToken answer (budget 512) at each frame count, each in a fresh process, per
  frame cache: `memory` (the default: sampled frames in RAM within video_cache_mib = 2048), `memory 8 MiB`
  (video_cache_mib=8, which the 1,000-frame video already fills: frames beyond it dropped and decoded again),
  the same without handing freed heap memory back after each group pass (`heap.release_free_heap`
  replaced by a no-op: what the pipeline did before), `disk`, `off`, and `one-piece` (the unmodified model
  given the whole clip through its processor; up to 4,096 frames).
- `growth`: what grows with the video, at the smallest and the largest frame count, with and without the heap
  trim (video_cache_mib=8, one AdaptToken answer per process): at the end of the group passes, resident memory,
  the bytes glibc's allocator has in use and holds free (`mallinfo2`), the frame/feature cache, Python objects
  (tracemalloc without numpy's array data; it slows the run) and the per-group scores and token ids; the peak
  over the whole answer.
- `store7b`: the selector stage (`Stage.collect_evidence` with the bounded candidate store, the selector's
  `select`, the gather of the kept tokens' features) at Qwen2.5-VL-7B's shape: features D = 3584 in bfloat16,
  448 x 448 px frames (256 tokens per frame pair), 64 frames (8,192 tokens) per group, budget 7,040; at each
  frame count for adapttoken, adapttoken-lite and attention-topk, and at 100 / 1,000 / 10,000 text tokens
  after the video (`--store7b-text`) for one group. No model of that size runs on a CPU: a synthetic adapter
  returns seeded random features per group, and a one-layer synthetic model runs the real scoring hook
  (`scoring.capture_scores`) on seeded random hidden states (width 64 for the frame rows, 3584 with 4 heads
  of 128 for the text rows) and answers with random logits (entropies far above theta: Lite visits every
  group, its worst case). The unbounded store (`collect_evidence(bound_store=False)`, what the ablation keeps)
  is run at the smallest frame count.
- `overlap`: seconds per answer with and without background decoding (decode_ahead), AdaptToken (every group)
  and Lite stopped after a quarter of the groups (theta=100, min_groups=G/4, so that every run visits the same
  groups), on the toy video and on a long-GOP video. The configurations take turns, repeated; the table shows
  each one's fastest run.
- `questions`: three questions on one video with one Pipeline (what lmms-eval does for VideoMME), against a
  fresh Pipeline per question (what it did before).
- `question-length`: peak RSS against the question's length (`--question-chars`, characters of question text:
  one token per character on the toy model's byte-level tokenizer; `--question-frames` frames): AdaptToken,
  the `full` selector (no group pass, so no scoring rows) and `one-piece`. The scoring rows are computed in
  chunks, so a long question costs memory in proportion to its length, not to its square.

Peak RSS is measured over the process's RSS after the model is loaded and the decoder imported (importing
torchcodec loads CUDA libraries once per process: scripts/bench_decoders.py reports that apart). torchcodec
is given PyAV's FFmpeg when the system has none (scripts/torchcodec_ffmpeg.py). The model computes on
`--threads` torch threads (default 1: the background decoder gets the other core of a 2-core machine, as
it gets the CPU beside a GPU; on a shared, busy machine more threads than free cores make every timing
erratic).

    python scripts/bench_memory.py                                 # 1,000 / 4,000 / 10,000 frames, all sections
    python scripts/bench_memory.py --frames 1000 --sections memory --out runs/bench_memory.json
    python scripts/bench_memory.py --sections question-length --question-chars 100 10000 100000
    python scripts/bench_memory.py --sections store7b
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAME_SIDE = 56  # 56 x 56 px frames: 2 x 2 visual tokens per frame pair on the toy model
VIDEO_FPS = 8.0
QUESTION, OPTIONS = "What colour is the square?", ["red", "green", "blue", "yellow"]
MEMORY_MODES = ("pipeline", "pipeline-8mib", "pipeline-8mib-no-trim", "pipeline-disk", "pipeline-off", "one-piece")
MODE_NAMES = {"pipeline": "memory (default)", "pipeline-8mib": "memory, 8 MiB",
              "pipeline-8mib-no-trim": "memory, 8 MiB, no heap trim", "pipeline-disk": "disk", "pipeline-off": "off",
              "one-piece": "one-piece"}
QUESTION_MODES = ("pipeline", "pipeline-full", "one-piece")
ONE_PIECE_MAX = 4096  # the unmodified model on 10,000 frames needs several GB and minutes: not run


def rss_mb() -> float:
    """Current resident set size of this process, MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS count (Linux >= 4.0), so that a peak reached while loading the model or
    importing a decoder is not taken for the answer's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident set size of this process since the last `reset_peak_rss`, MiB (Linux; elsewhere since start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_video(path: Path, frames: int) -> Path:
    """Random 56 x 56 frames at 8 fps, a keyframe every second (write_video)."""
    import numpy as np

    from adapttoken_plugin.video import write_video

    if not path.exists():
        rng = np.random.default_rng(frames)
        write_video(path, (rng.integers(0, 255, (FRAME_SIDE, FRAME_SIDE, 3), dtype=np.uint8) for _ in range(frames)),
                    fps=VIDEO_FPS)
    return path


def long_question(chars: int) -> str:
    """A question of `chars` characters (words of a fixed text, repeated, then the question itself)."""
    filler = "Consider every frame of the video carefully before answering the question below. "
    text = (filler * (chars // len(filler) + 1))[: max(0, chars - len(QUESTION) - 1)]
    return f"{text} {QUESTION}" if text else QUESTION


THREADS = 1  # torch threads of the model: --threads, passed on to the workers


def _toy():
    import torch

    from adapttoken_plugin.toy import toy_model, toy_processor

    torch.set_num_threads(THREADS)
    return toy_model(), toy_processor(min_pixels=FRAME_SIDE**2, max_pixels=FRAME_SIDE**2)


def _import_decoder() -> None:
    """Import what `auto` decodes with before the baseline is taken (a one-off per process, reported apart)."""
    from adapttoken_plugin.video.torchcodec_backend import torchcodec_status

    if torchcodec_status() is None:
        import torchcodec.decoders  # noqa: F401
    import av  # noqa: F401


def worker(mode: str, video: str, frames: int, budget: int, question_chars: int = 0) -> dict:
    """One answer in this process (the `memory` and `question-length` sections' modes; `pipeline` is also what
    bench_needle.py runs)."""
    import torch

    from adapttoken_plugin import AdaptTokenConfig, Pipeline
    from adapttoken_plugin.video import FrameReader, sample_frame_indices

    model, processor = _toy()
    _import_decoder()
    bounded = {"frame_cache": "memory", "video_cache_mib": 8}
    settings = {"pipeline": {}, "pipeline-8mib": bounded, "pipeline-8mib-no-trim": bounded,
                "pipeline-disk": {"frame_cache": "disk"}, "pipeline-off": {"frame_cache": "off"},
                "pipeline-full": {"selector": "full"}}.get(mode, {})
    if mode.endswith("no-trim"):  # freed heap memory stays with the allocator, as before the stage handed it back
        import adapttoken_plugin.stage as stage_module

        stage_module.release_free_heap = lambda: False
    question = long_question(question_chars)
    config = AdaptTokenConfig(fps=VIDEO_FPS, max_frames=frames, budget=budget, frames_per_group=64, **settings)
    reset_peak_rss()
    base = rss_mb()
    start = time.perf_counter()
    if mode.startswith("pipeline"):
        pipe = Pipeline(model, processor, config)
        answer = pipe.answer(video, question, OPTIONS)
        t = answer.trace
        extra = {"kept_tokens": t.kept_tokens, "total_tokens": t.total_tokens, "groups": len(t.groups),
                 "seconds_by_stage": t.seconds, "frame_cache": t.frame_cache, "frames_decoded": t.frames_decoded,
                 "video_backend": t.video_backend, "cache_peak_mib": pipe.cache.peak_bytes / 2**20,
                 "candidate_store_peak_mib": t.candidate_store_peak_bytes / 2**20}
    else:
        with FrameReader(video) as reader:
            indices = sample_frame_indices(reader.info, VIDEO_FPS, frames, multiple_of=2)
            clip = reader.read(indices.tolist())
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], videos=[clip], return_tensors="pt", do_sample_frames=False,
                           cap_pixels_per_frame=False)
        del clip
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=16, do_sample=False)
        extra = {"total_tokens": int((inputs["input_ids"] == model.config.video_token_id).sum())}
    return {"mode": mode, "frames": frames, "question_chars": len(question), "seconds": time.perf_counter() - start,
            "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, "peak_over_base_mb": peak_rss_mb() - base, **extra}


def glibc_heap_mb() -> tuple[float, float] | None:
    """(bytes in use, free bytes held) by glibc's allocator over all its arenas, MiB; None without glibc's
    `mallinfo2` (glibc < 2.33, or another C library)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def growth_worker(video: str, frames: int, budget: int, trim: bool) -> dict:
    """One AdaptToken answer (video_cache_mib=8) with what is held at the end of the group passes."""
    import tracemalloc

    import numpy as np

    from adapttoken_plugin import AdaptTokenConfig, Pipeline

    def python_objects_mb() -> float:  # numpy's array data is traced too, in its own domain: left out
        numpy_data = tracemalloc.DomainFilter(inclusive=False, domain=np.lib.tracemalloc_domain)
        return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces([numpy_data]).statistics(
            "filename")) / 2**20

    model, processor = _toy()
    _import_decoder()
    if not trim:
        import adapttoken_plugin.stage as stage_module

        stage_module.release_free_heap = lambda: False
    config = AdaptTokenConfig(fps=VIDEO_FPS, max_frames=frames, budget=budget, frames_per_group=64,
                              frame_cache="memory", video_cache_mib=8)
    pipe = Pipeline(model, processor, config)
    tracemalloc.start()
    reset_peak_rss()
    base, heap_base = rss_mb(), glibc_heap_mb()
    held: dict = {}
    groups = []

    def on_group(group, num_groups: int) -> None:
        groups.append(group)
        if len(groups) == num_groups:  # the last pass: what the passes left behind
            heap = glibc_heap_mb()
            held.update(rss_mb=rss_mb() - base, cache_mb=pipe.cache.bytes / 2**20,
                        python_mb=python_objects_mb(),
                        scores_and_ids_mb=sum(t.numel() * t.element_size() for g in groups
                                              for t in (g.scores, g.token_ids, g.units)) / 2**20)
            if heap is not None and heap_base is not None:
                held.update(heap_in_use_mb=heap[0] - heap_base[0], heap_free_mb=heap[1])

    answer = pipe.answer(video, QUESTION, OPTIONS, on_group=on_group)
    tracemalloc.stop()
    return {"frames": frames, "trim": trim, "groups": len(answer.trace.groups),
            "peak_over_base_mb": peak_rss_mb() - base,
            "heap_free_at_start_mb": None if heap_base is None else heap_base[1],
            "candidate_store_peak_mib": answer.trace.candidate_store_peak_bytes / 2**20, **held}


def overlap_worker(video: str, fps: float, frames: int, repeats: int) -> list[dict]:
    """Seconds per answer of AdaptToken and of Lite (a quarter of the groups), with and without decode_ahead;
    and both decoded in growing batches whatever the pipeline would choose (`..., batches`): the alternative it
    does not take for selectors that visit every group, nor for Lite where a group read alone costs too much."""
    import math

    import adapttoken_plugin.pipeline as pipeline_module
    from adapttoken_plugin import AdaptTokenConfig, Pipeline

    model, processor = _toy()
    _import_decoder()
    base = AdaptTokenConfig(fps=fps, max_frames=frames, budget=512, frames_per_group=64)
    groups = math.ceil(len(Pipeline(model, processor, base).plan_video(video).indices) / 64)
    lite = {"selector": "adapttoken-lite", "theta": 100.0, "min_groups": max(1, round(groups / 4))}
    configs = {(selector, ahead): base.replace(decode_ahead=ahead, **(lite if selector == "lite" else {}))
               for selector in ("adapttoken", "lite") for ahead in (False, True)}
    configs[("adapttoken, batches", True)] = base
    configs[("lite, batches", True)] = configs[("lite", True)]
    one_pass = pipeline_module.plan_decoding

    def growing_batches(groups, frames_per_unit, frame_bytes, may_stop_early, max_batch_bytes):
        return one_pass(groups, frames_per_unit, frame_bytes, True, max_batch_bytes)

    runs: dict[tuple[str, bool], list[dict]] = {key: [] for key in configs}
    for _ in range(repeats):  # the configurations take turns: a slow spell of a busy machine hits all of them
        for key, config in configs.items():
            pipeline_module.plan_decoding = growing_batches if key[0].endswith("batches") else one_pass
            pipe = Pipeline(model, processor, config)  # a fresh cache each time: nothing carried over
            start = time.perf_counter()
            trace = pipe.answer(video, QUESTION, OPTIONS).trace
            runs[key].append({"seconds": time.perf_counter() - start, "decode_wait": trace.seconds["decode"],
                              "frames_decoded": trace.frames_decoded, "groups_visited": trace.groups_visited,
                              "groups": len(trace.groups), "video_backend": trace.video_backend,
                              "decode_order": trace.decode_order})
    return [{"video": Path(video).name, "selector": selector, "decode_ahead": ahead, "frames": frames,
             "all_seconds": [r["seconds"] for r in runs[(selector, ahead)]],
             **min(runs[(selector, ahead)], key=lambda r: r["seconds"])} for selector, ahead in configs]


def questions_worker(video: str, frames: int, repeats: int) -> list[dict]:
    """Three questions on one video: one Pipeline for all (cached), or a fresh Pipeline per question."""
    from adapttoken_plugin import AdaptTokenConfig, Pipeline

    model, processor = _toy()
    _import_decoder()
    config = AdaptTokenConfig(fps=VIDEO_FPS, max_frames=frames, budget=512, frames_per_group=64)
    questions = [QUESTION, "Which colour was the square?", "What was the colour of the square?"]
    best: dict[tuple[str, int], dict] = {}
    for _ in range(repeats):
        for how in ("fresh pipeline per question", "one pipeline"):
            shared = Pipeline(model, processor, config)
            for q, question in enumerate(questions):
                pipe = shared if how == "one pipeline" else Pipeline(model, processor, config)
                start = time.perf_counter()
                trace = pipe.answer(video, question, OPTIONS).trace
                row = {"how": how, "question": q + 1, "seconds": time.perf_counter() - start,
                       "frames_decoded": trace.frames_decoded, "encoder_calls": trace.encoder_calls,
                       "decode": trace.seconds["decode"], "vision": trace.seconds["vision"]}
                if (how, q) not in best or row["seconds"] < best[(how, q)]["seconds"]:
                    best[(how, q)] = row
    return list(best.values())


# -- store7b: the selector stage at Qwen2.5-VL-7B's shape, on synthetic features and hidden states ------------------

D7B = 3584  # Qwen2.5-VL-7B's feature width (the language model's hidden size)
GRID7B = 16  # 448 x 448 px frame pairs: 16 x 16 visual tokens after the 2 x 2 merge
BUDGET7B = 7040
FRAMES_PER_GROUP7B = 64  # 32 frame pairs: 8,192 tokens per group
STORE7B_SELECTORS = ("adapttoken", "adapttoken-lite", "attention-topk")


def apply_rotary_pos_emb(q, k, cos, sin):
    """Rotary embedding of the synthetic attention (the scoring hook looks it up in the attention's module)."""
    def rotate(x):
        half = x.shape[-1] // 2
        return __import__("torch").cat([-x[..., half:], x[..., :half]], dim=-1)

    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate(q) * sin, k * cos + rotate(k) * sin


def synthetic_stage(selector: str, width: int, heads: int, head_dim: int, seed: int = 0):
    """A `Stage` of `selector` (budget 7,040, 64 frames per group, scoring layer 0) over a synthetic adapter and a
    one-layer synthetic model: `encode` gives seeded random (N, 3584) bfloat16 features per group; a forward makes
    seeded random hidden states (1, L, width) in bfloat16, runs the attention module (whose pre-hook is the real
    scoring hook; the module itself computes nothing) and returns random logits over 1,000 tokens (answer entropies
    of 3 to 6.5 nats: Lite never stops early)."""
    from types import SimpleNamespace

    import torch

    from adapttoken_plugin import AdaptTokenConfig
    from adapttoken_plugin.adapters.base import ModelAdapter
    from adapttoken_plugin.stage import Stage

    class Attention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_idx, self.head_dim, self.scaling = 0, head_dim, head_dim**-0.5
            self.config = SimpleNamespace(num_attention_heads=heads)
            self.q_proj = torch.nn.Linear(width, heads * head_dim, bias=False, dtype=torch.bfloat16)
            self.k_proj = torch.nn.Linear(width, heads * head_dim, bias=False, dtype=torch.bfloat16)

        def forward(self, hidden_states, position_embeddings):
            return hidden_states

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Module()])
            self.layers[0].self_attn = Attention()

        def get_decoder(self):
            return self

        def forward(self, input_ids, group_seed, logits_to_keep=1, use_cache=False):
            seq_len = input_ids.shape[1]
            gen = torch.Generator().manual_seed(seed * 1_000_003 + group_seed)
            hidden = torch.randn(1, seq_len, width, generator=gen, dtype=torch.bfloat16)
            inv = 1.0 / 10000 ** (torch.arange(0, head_dim, 2) / head_dim)
            angles = torch.arange(seq_len)[:, None] * inv[None, :]
            angles = torch.cat([angles, angles], dim=-1)[None]
            self.layers[0].self_attn(hidden_states=hidden, position_embeddings=(angles.cos(), angles.sin()))
            scale = 1.0 + 1.5 * float(torch.rand((), generator=gen))  # entropies of 3 to 6.5 nats: none <= theta
            return SimpleNamespace(logits=torch.randn(1, 1, 1000, generator=gen) * scale)

    class Adapter(ModelAdapter):
        frames_per_unit = 2

        @property
        def device(self):
            return torch.device("cpu")

        def split_inputs(self, inputs):
            raise NotImplementedError

        def unit_pixels(self, pixels, layout, units):
            raise NotImplementedError

        def encode(self, pixel_inputs):
            units = pixel_inputs["units"]
            gen = torch.Generator().manual_seed(seed * 1_000_003 + int(units[0]))
            return torch.randn(len(units) * GRID7B * GRID7B, D7B, generator=gen, dtype=torch.bfloat16)

        def model_inputs(self, prompt, layout, token_ids, features):
            length = len(prompt.prefix_ids) + len(token_ids) + len(prompt.suffix_ids)
            return {"input_ids": torch.zeros(1, length, dtype=torch.long), "group_seed": int(token_ids[0])}

        def visual_columns(self, prompt, layout, token_ids):
            return torch.arange(len(prompt.prefix_ids), len(prompt.prefix_ids) + len(token_ids))

    model = Model()
    config = AdaptTokenConfig(selector=selector, budget=BUDGET7B, frames_per_group=FRAMES_PER_GROUP7B, scoring_layer=0)
    return Stage(model, Adapter(model), config)


def store7b_worker(selector: str, frames: int, text_tokens: int, width: int, bounded: bool) -> dict:
    """One selection at the 7B shape in this process: peak RSS over the RSS once the synthetic stage is made."""
    import torch

    from adapttoken_plugin.adapters.base import PromptParts
    from adapttoken_plugin.layout import VideoLayout
    from adapttoken_plugin.stage import Query

    torch.set_num_threads(THREADS)
    heads, head_dim = (4, 128) if width == D7B else (2, 32)
    stage = synthetic_stage(selector, width, heads, head_dim)
    layout = VideoLayout(num_units=frames // 2, grid_h=GRID7B, grid_w=GRID7B, frames_per_unit=2)
    prompt = PromptParts(torch.arange(16), torch.arange(text_tokens))
    query = Query(prompt, layout, lambda units: {"units": units})
    reset_peak_rss()
    base = rss_mb()
    start = time.perf_counter()
    evidence = stage.collect_evidence(query, bound_store=bounded)
    result = stage.finish(query, evidence)
    seconds = time.perf_counter() - start
    per_token = sum(t.numel() * t.element_size() for g in evidence.groups
                    for t in (g.scores, g.token_ids, g.units) if t is not None)
    return {"selector": selector, "frames": frames, "text_tokens": text_tokens, "width": width, "bounded": bounded,
            "visual_tokens": layout.num_tokens, "groups": len(evidence.groups),
            "groups_visited": result.trace.groups_visited, "kept_tokens": result.trace.kept_tokens,
            "candidate_store_peak_mib": result.trace.candidate_store_peak_bytes / 2**20,
            "scores_and_ids_mib": per_token / 2**20, "kept_features_mib": result.features.numel() * 2 / 2**20,
            "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base,
            "peak_over_base_mb": peak_rss_mb() - base}


def child_env() -> dict:
    """This environment, plus PyAV's FFmpeg on the library path when torchcodec finds no system FFmpeg."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_decoders import child_env as decoders_child_env

    return decoders_child_env()


def run_child(args: list[str], env: dict) -> list[dict] | dict:
    proc = subprocess.run([sys.executable, __file__, *args, "--threads", str(THREADS)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def long_gop_video(cache: Path) -> Path:
    """The 10-minute long-GOP video of scripts/bench_decoders.py (30 fps, keyframe every 250 frames)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_decoders import make_video as make_long

    return make_long(cache / "longgop_10min.mp4", 10.0)


def print_table(columns: list[str], rows: list[dict], cells, label) -> None:
    """A Markdown table of `rows` under `columns`: `cells(row)` gives a row's texts; a row that failed (it has an
    "error") shows `label(row)`, then the error, then "-" up to the last column."""
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for r in rows:
        if "error" in r:
            lead = [str(x) for x in label(r)]
            texts = lead + [f"failed: {r['error']}"] + ["-"] * (len(columns) - len(lead) - 1)
        else:
            texts = [str(x) for x in cells(r)]
        print("| " + " | ".join(texts) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 4000, 10000])
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--sections", nargs="+", default=["memory", "overlap", "questions"],
                        choices=["memory", "growth", "overlap", "questions", "question-length", "store7b"])
    parser.add_argument("--overlap-frames", type=int, default=4000, help="toy-video frame count of `overlap`")
    parser.add_argument("--question-chars", type=int, nargs="+", default=[100, 1000, 10_000],
                        help="question lengths (characters) of `question-length` (100000: about 40 minutes on 2 cores)")
    parser.add_argument("--question-frames", type=int, default=64, help="frames of `question-length`'s video")
    parser.add_argument("--question-budget", type=int, default=32, help="budget of `question-length`")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the model (see above)")
    parser.add_argument("--out", default="runs/bench_memory.json")
    parser.add_argument("--cache", default="runs/bench_videos", help="folder for the generated test videos")
    parser.add_argument("--worker", nargs=5, metavar=("MODE", "VIDEO", "FRAMES", "BUDGET", "CHARS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--overlap-worker", nargs=4, metavar=("VIDEO", "FPS", "FRAMES", "REPEATS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--questions-worker", nargs=3, metavar=("VIDEO", "FRAMES", "REPEATS"), help=argparse.SUPPRESS)
    parser.add_argument("--growth-worker", nargs=4, metavar=("VIDEO", "FRAMES", "BUDGET", "TRIM"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--store7b-text", type=int, nargs="+", default=[100, 1000, 10_000],
                        help="text tokens after the video of `store7b`'s question rows (one group of 64 frames)")
    parser.add_argument("--store7b-worker", nargs=5, metavar=("SELECTOR", "FRAMES", "TEXT", "WIDTH", "BOUNDED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    if args.worker:
        mode, video, frames, budget, chars = args.worker
        print(json.dumps(worker(mode, video, int(frames), int(budget), int(chars))))
        return
    if args.overlap_worker:
        video, fps, frames, repeats = args.overlap_worker
        print(json.dumps(overlap_worker(video, float(fps), int(frames), int(repeats))))
        return
    if args.questions_worker:
        video, frames, repeats = args.questions_worker
        print(json.dumps(questions_worker(video, int(frames), int(repeats))))
        return
    if args.growth_worker:
        video, frames, budget, trim = args.growth_worker
        print(json.dumps(growth_worker(video, int(frames), int(budget), trim == "1")))
        return
    if args.store7b_worker:
        selector, frames, text, width, bounded = args.store7b_worker
        print(json.dumps(store7b_worker(selector, int(frames), int(text), int(width), bounded == "1")))
        return

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    env = child_env()
    out: dict = {"frame_side": FRAME_SIDE, "budget": args.budget, "torch_threads": args.threads,
                 "load_average_start": os.getloadavg(), "cpus": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after each section: a long run stopped midway keeps what it measured
        Path(args.out).write_text(json.dumps(out | {"load_average_now": os.getloadavg()}, indent=1))

    if "memory" in args.sections:
        rows = []
        for frames in args.frames:
            video = make_video(cache / f"noise_{frames}.mp4", frames)
            for mode in MEMORY_MODES:
                if mode == "one-piece" and frames > ONE_PIECE_MAX:
                    continue
                rows.append(run_child(["--worker", mode, str(video), str(frames), str(args.budget), "0"], env)
                            | {"mode": mode, "frames": frames})
                print(rows[-1], file=sys.stderr)
        out["memory"] = rows
        save()
        def memory_cells(r: dict) -> list:
            peak = f"{r['cache_peak_mib']:.1f}" if "cache_peak_mib" in r else "-"
            rest = f"{r['peak_over_base_mb'] - r['cache_peak_mib']:.0f}" if "cache_peak_mib" in r else "-"
            return [r["frames"], MODE_NAMES[r["mode"]], r.get("total_tokens", "-"), r.get("kept_tokens", "all"),
                    r.get("frames_decoded", r["frames"]), f"{r['seconds']:.2f}", peak, f"{r['peak_over_base_mb']:.0f}",
                    rest]

        print()
        print_table(["frames", "frame cache", "visual tokens", "kept", "frames decoded", "seconds",
                     "frame/feature cache peak (MiB)", "peak RSS over start (MiB)", "of which not the cache (MiB)"],
                    rows, memory_cells, lambda r: [r["frames"], MODE_NAMES[r["mode"]]])
        first, last = min(args.frames), max(args.frames)
        print(f"\npeak RSS over start at {last} frames / at {first}:")
        for mode in MEMORY_MODES:
            ends = [r for r in rows if r["mode"] == mode and r["frames"] in (first, last) and "error" not in r]
            if len(ends) == 2 and first != last:
                low, high = sorted(ends, key=lambda r: r["frames"])
                print(f"- {MODE_NAMES[mode]}: {high['peak_over_base_mb'] / low['peak_over_base_mb']:.2f}x")

    if "growth" in args.sections:
        rows = []
        for frames in sorted({min(args.frames), max(args.frames)}):
            video = make_video(cache / f"noise_{frames}.mp4", frames)
            for trim in (False, True):
                rows.append(run_child(["--growth-worker", str(video), str(frames), str(args.budget),
                                       "1" if trim else "0"], env) | {"frames": frames, "trim": trim})
                print(rows[-1], file=sys.stderr)
        out["growth"] = rows
        save()

        def mb(r: dict, key: str) -> str:
            return "-" if r.get(key) is None else f"{r[key]:.1f}"

        print("\nAt the end of the group passes (MiB over the start unless said):\n")
        print_table(["frames", "heap trim", "RSS", "glibc in use", "glibc free, held", "frame/feature cache",
                     "Python objects", "scores and token ids", "candidate store peak", "peak RSS over start"], rows,
                    lambda r: [r["frames"], "yes" if r["trim"] else "no", mb(r, "rss_mb"), mb(r, "heap_in_use_mb"),
                               mb(r, "heap_free_mb"), mb(r, "cache_mb"), mb(r, "python_mb"),
                               mb(r, "scores_and_ids_mb"), f"{r['candidate_store_peak_mib']:.2f}",
                               f"{r['peak_over_base_mb']:.0f}"],
                    lambda r: [r["frames"], "yes" if r["trim"] else "no"])

    if "overlap" in args.sections:
        toy = make_video(cache / f"noise_{args.overlap_frames}.mp4", args.overlap_frames)
        rows = []
        for video, fps, frames in ((toy, VIDEO_FPS, args.overlap_frames), (long_gop_video(cache), 2.0, 1200)):
            got = run_child(["--overlap-worker", str(video), str(fps), str(frames), str(args.repeats)], env)
            rows += got if isinstance(got, list) else [got | {"video": video.name}]
            print(rows[-6:], file=sys.stderr)
        out["overlap"] = rows
        save()
        reference = {r["video"]: r["seconds"] for r in rows
                     if r.get("selector") == "adapttoken" and r.get("decode_ahead") is False}
        print()
        print_table(["video", "selector", "groups visited", "decoding order", "in the background", "frames decoded",
                     "seconds / answer", "of which waiting for frames", "vs AdaptToken without"], rows,
                    lambda r: [r["video"], r["selector"], f"{r['groups_visited']} / {r['groups']}", r["decode_order"],
                               "yes" if r["decode_ahead"] else "no", r["frames_decoded"], f"{r['seconds']:.2f}",
                               f"{r['decode_wait']:.2f}", f"{r['seconds'] / reference[r['video']]:.2f}x"],
                    lambda r: [r["video"]])

    if "questions" in args.sections:
        frames = args.overlap_frames
        video = make_video(cache / f"noise_{frames}.mp4", frames)
        got = run_child(["--questions-worker", str(video), str(frames), str(args.repeats)], env)
        rows = got if isinstance(got, list) else [got]
        out["questions"] = rows
        save()
        print(f"\n{frames} frames, AdaptToken, budget {args.budget}\n")
        print_table(["pipeline", "question", "frames decoded", "encoder calls", "seconds", "of which decoding",
                     "of which vision"], rows,
                    lambda r: [r["how"], r["question"], r["frames_decoded"], r["encoder_calls"], f"{r['seconds']:.2f}",
                               f"{r['decode']:.2f}", f"{r['vision']:.2f}"],
                    lambda r: [])

    if "question-length" in args.sections:
        video = make_video(cache / f"noise_{args.question_frames}.mp4", args.question_frames)
        rows = []
        for chars in args.question_chars:
            for mode in QUESTION_MODES:
                rows.append(run_child(["--worker", mode, str(video), str(args.question_frames),
                                       str(args.question_budget), str(chars)], env) | {"mode": mode})
                print(rows[-1], file=sys.stderr)
        out["question_length"] = rows
        save()
        print(f"\n{args.question_frames} frames, budget {args.question_budget}:\n")
        print_table(["question characters", "mode", "visual tokens", "kept", "seconds", "peak RSS over start (MiB)"],
                    rows,
                    lambda r: [r["question_chars"], r["mode"], r.get("total_tokens", "-"), r.get("kept_tokens", "all"),
                               f"{r['seconds']:.2f}", f"{r['peak_over_base_mb']:.0f}"],
                    lambda r: ["-", r["mode"]])

    if "store7b" in args.sections:
        rows = []
        jobs = [(name, frames, 32, 64, True) for frames in args.frames for name in STORE7B_SELECTORS]
        jobs.append(("adapttoken", min(args.frames), 32, 64, False))
        jobs += [("adapttoken", FRAMES_PER_GROUP7B, text, D7B, True) for text in args.store7b_text]
        for selector, frames, text, width, bounded in jobs:
            rows.append(run_child(["--store7b-worker", selector, str(frames), str(text), str(width),
                                   "1" if bounded else "0"], env)
                        | {"selector": selector, "frames": frames, "text_tokens": text, "bounded": bounded})
            print(rows[-1], file=sys.stderr)
        out["store7b"] = rows
        save()
        def store7b_label(r: dict) -> list:
            return [r["frames"], r["text_tokens"], r["selector"], "bounded" if r["bounded"] else "unbounded"]

        print(f"\nQwen2.5-VL-7B shape (D = {D7B}, bfloat16, {GRID7B * GRID7B} tokens per frame pair, "
              f"{FRAMES_PER_GROUP7B} frames per group), budget {BUDGET7B}:\n")
        print_table(["frames", "text tokens", "selector", "candidate store", "groups visited", "kept", "seconds",
                     "candidate store peak (MiB)", "scores and token ids (MiB)", "kept features (MiB)",
                     "peak RSS over start (MiB)"], rows,
                    lambda r: [*store7b_label(r), f"{r['groups_visited']} / {r['groups']}", r["kept_tokens"],
                               f"{r['seconds']:.1f}", f"{r['candidate_store_peak_mib']:.1f}",
                               f"{r['scores_and_ids_mib']:.1f}", f"{r['kept_features_mib']:.1f}",
                               f"{r['peak_over_base_mb']:.0f}"],
                    store7b_label)

    save()
    print(f"\nload average {out['load_average_start'][0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on "
          f"{out['cpus']} CPUs; model on {args.threads} torch thread(s)\nwritten: {args.out}")


if __name__ == "__main__":
    main()
