"""CPU and memory per delivered frame of each video decoder (torchcodec, PyAV, decord) through FrameReader.

A synthetic long-GOP video (x264, 30 fps, a keyframe every 250 frames as x264 does by default, scene cuts
every 10 s) is sampled at 1 fps and resized to 224 x 224 while decoding, read two ways:
`time order` (chunks of 64 frames in time order: what the pipeline's one pass over every group does) and
`per group` (each interleaved group of 32 frame pairs at once: what a decoder working group by group does).
Each backend runs in a fresh subprocess (CPU time and RSS are per process); torchcodec is given PyAV's
FFmpeg when the system has none (scripts/torchcodec_ffmpeg.py). Prints a markdown table and writes JSON.

    python scripts/bench_decoders.py                      # 10 minutes of 480 x 270 video
    python scripts/bench_decoders.py --minutes 20 --out runs/bench_decoders.json
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

NATIVE = (270, 480)  # height, width of the test video
SIZE = (224, 224)  # frames are resized to this while decoding
FPS, GOP, SCENE_S = 30, 250, 10
SAMPLE_FPS = 1.0
GROUP_UNITS, FRAMES_PER_UNIT = 32, 2


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def make_video(path: Path, minutes: float) -> Path:
    """A moving pattern with fine texture, a new scene every SCENE_S seconds (x264 crf 23, keyint 250)."""
    if path.exists():
        return path
    import av
    import numpy as np

    height, width = NATIVE
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=FPS)
    stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
    stream.options = {"crf": "23", "g": str(GOP), "preset": "veryfast"}
    texture = None
    for i in range(int(minutes * 60 * FPS)):
        if i % (SCENE_S * FPS) == 0:
            texture = rng.integers(0, 64, (height, width, 3), dtype=np.uint8)
            colour = rng.integers(0, 192, 3)
        shift = i % width
        wave = ((np.sin((xx + 3 * shift) / 17.0) + np.cos((yy + shift) / 23.0)) * 48 + 96).astype(np.uint8)
        frame = np.roll(texture, shift, axis=1) + wave[..., None] // 2 + colour.astype(np.uint8)[None, None] // 2
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def worker(backend: str, video: str, order: str) -> dict:
    """One backend, one read order, in this process. `decord-kept-heap`: decord without returning its freed heap
    to the OS on close (what it did before `heap.release_free_heap`)."""
    import numpy as np

    from adapttoken_plugin.layout import interleaved_groups
    from adapttoken_plugin.video import FrameReader, sample_frame_indices
    from adapttoken_plugin.video.reader import backend_version

    name = backend
    if backend == "decord-kept-heap":
        import adapttoken_plugin.video.decord_backend as decord_backend

        decord_backend.release_free_heap = lambda: False
        backend = "decord"
    if backend == "torchcodec":
        import torchcodec.decoders  # noqa: F401  (its import loads CUDA libraries: counted apart, below)
    base_rss, base_cpu = rss_mib(), cpu_seconds()
    start = time.perf_counter()
    reader = FrameReader(video, backend=backend, size=SIZE)
    indices = sample_frame_indices(reader.info, SAMPLE_FPS, 10**6, multiple_of=FRAMES_PER_UNIT)
    if order == "time order":
        batches = [indices[s:s + 64] for s in range(0, len(indices), 64)]
    else:
        units = len(indices) // FRAMES_PER_UNIT
        groups = interleaved_groups(units, GROUP_UNITS)
        batches = [indices[(g.numpy()[:, None] * FRAMES_PER_UNIT + np.arange(FRAMES_PER_UNIT)).ravel()]
                   for g in groups]
    peak = 0.0
    for batch in batches:
        frames = reader.read(batch)
        peak = max(peak, rss_mib())
        del frames
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - base_cpu
    read_rss = rss_mib() - base_rss
    reader.close()
    closed_rss = rss_mib() - base_rss
    return {"backend": name, "version": backend_version(backend), "order": order, "frames": len(indices),
            "seconds": seconds, "cpu_seconds": cpu, "ms_cpu_per_frame": 1000 * cpu / len(indices),
            "ms_wall_per_frame": 1000 * seconds / len(indices), "peak_rss_over_start_mib": peak - base_rss,
            "rss_after_reading_mib": read_rss, "rss_after_close_mib": closed_rss}


def import_cost(backend: str) -> dict:
    """RSS a fresh process gains by importing the backend (torchcodec loads CUDA libraries)."""
    import torch  # noqa: F401  (the pipeline has it loaded already)

    base = rss_mib()
    __import__({"torchcodec": "torchcodec.decoders", "pyav": "av"}.get(backend, "decord"))
    return {"backend": backend, "import_rss_mib": rss_mib() - base}


def child_env() -> dict:
    """This environment, plus PyAV's FFmpeg on the library path when torchcodec finds no system FFmpeg."""
    env = dict(os.environ)
    path = subprocess.run([sys.executable, str(ROOT / "scripts" / "torchcodec_ffmpeg.py"),
                           str(ROOT / "runs" / "torchcodec-ffmpeg")], capture_output=True, text=True).stdout.strip()
    if path:
        env["LD_LIBRARY_PATH"] = path + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env["PYTHONPATH"] = str(ROOT) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_child(args: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backends", nargs="+", default=["torchcodec", "pyav", "decord", "decord-kept-heap"])
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the table shows the fastest")
    parser.add_argument("--out", default="runs/bench_decoders.json")
    parser.add_argument("--cache", default="runs/bench_videos")
    parser.add_argument("--worker", nargs=3, metavar=("BACKEND", "VIDEO", "ORDER"), help=argparse.SUPPRESS)
    parser.add_argument("--import-cost", metavar="BACKEND", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    if args.import_cost:
        print(json.dumps(import_cost(args.import_cost)))
        return

    Path(args.cache).mkdir(parents=True, exist_ok=True)
    video = make_video(Path(args.cache) / f"longgop_{args.minutes:g}min.mp4", args.minutes)
    env = child_env()
    rows = []
    for backend in args.backends:
        imported = run_child(["--import-cost", backend], env)
        for order in ("time order",) if backend == "decord-kept-heap" else ("time order", "per group"):
            runs = [run_child(["--worker", backend, str(video), order], env) for _ in range(args.repeats)]
            good = [r for r in runs if "error" not in r]
            row = min(good, key=lambda r: r["cpu_seconds"]) if good else {"backend": backend, "order": order,
                                                                           **runs[0]}
            row["import_rss_mib"] = imported.get("import_rss_mib")
            rows.append(row)
            print(row, file=sys.stderr)

    load = os.getloadavg()
    print(f"\n{args.minutes:g} min of {NATIVE[1]}x{NATIVE[0]} at {FPS} fps (keyframe every {GOP}, scene cut every "
          f"{SCENE_S} s), sampled at {SAMPLE_FPS:g} fps, resized to {SIZE[1]}x{SIZE[0]}; load average "
          f"{load[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| backend | version | read | frames | CPU ms / frame | wall ms / frame | peak RSS over start (MiB) | "
          "RSS after close (MiB) | import (MiB) |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['backend']} | - | {r['order']} | - | - | - | - | - | failed: {r['error']} |")
            continue
        print(f"| {r['backend']} | {r['version']} | {r['order']} | {r['frames']} | {r['ms_cpu_per_frame']:.1f} | "
              f"{r['ms_wall_per_frame']:.1f} | {r['peak_rss_over_start_mib']:.0f} | {r['rss_after_close_mib']:.0f} | "
              f"{r['import_rss_mib']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"video": str(video), "minutes": args.minutes, "native": NATIVE,
                                          "size": SIZE, "load_average": load, "rows": rows}, indent=1))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
