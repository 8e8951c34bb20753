"""One rank of the 2-rank tensor-parallel test (started by test_tensor_parallel.py under torchrun).

    PYTHONPATH=tests python -m torch.distributed.run --standalone --nproc_per_node 2 \
        tests/distributed/tp_worker.py OUT [DIVERGE [BACKEND]]      # tests/: the `fixtures` package

Builds the tiny Qwen2.5-VL (same seed, so the same weights, on every rank), splits its language model
with DeepSpeed inference (BACKEND `deepspeed`, the default) or transformers' own tensor parallelism
(`transformers`), runs `record` and saves the result to OUT/rank{r}.pt. `record` is also what the test
runs in one process on the unsharded model, for the reference.

DIVERGE is this test's own knob to break one rank on purpose (never a library setting):
`pixels` perturbs rank 1's video input, `stall` makes rank 1 stop taking part.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

import torch

import adapttoken_plugin as at
from fixtures.tiny import qwen2_5_vl, qwen_video_inputs

#: selection settings of the run: 8 frame pairs of 4 tokens in 4 groups, 12 of 32 tokens kept
CONFIGS = {
    "max": dict(selector="adapttoken", budget=12, frames_per_group=4, scoring_layer=1),
    "mean": dict(selector="adapttoken", budget=12, frames_per_group=4, scoring_layer=1, score_reduce="mean"),
}


def family_config(family) -> dict:
    """Two frame units per group, 3 tokens kept: a real selection on every family's tiny test video."""
    return {"max": dict(selector="adapttoken", budget=3, frames_per_group=family.frames_per_group, scoring_layer=1)}


def record_families() -> dict:
    """`record` for every family of the adapter contract suite (tiny models, real processors)."""
    from fixtures.families import FAMILIES

    return {name: record(family.model(), family.inputs(family.build_processor()), family_config(family))
            for name, family in FAMILIES.items()}


def record(model, inputs: dict, configs: dict = CONFIGS) -> dict:
    """Logits of the unselected forward, then per config the group entropies, kept tokens, the selected
    forward's logits and the greedy answer."""
    out = {}
    with torch.no_grad():
        out["plain_logits"] = model(**inputs).logits
    for name, cfg in configs.items():
        at.enable(model, cfg)
        with torch.no_grad():
            answer = model.generate(**inputs, max_new_tokens=6, do_sample=False)
            trace = model.adapttoken_trace
            logits = model(**inputs).logits
        at.disable(model)
        out[name] = {
            "entropies": torch.tensor([g.entropy for g in trace.groups]),
            "kept": torch.tensor(trace.kept_token_ids),
            "logits": logits,
            "answer": answer,
        }
    return out


def split_model(out_dir: Path, backend: str, build=lambda: qwen2_5_vl(num_layers=3)):
    """The tiny model `build()` split over the 2 ranks by DeepSpeed inference or by transformers' own TP."""
    from adapttoken_plugin.distributed import attach_native, tensor_parallel_of
    from adapttoken_plugin.integrations.deepspeed import shard_language_model

    model = build()
    if backend == "deepspeed":
        shard_language_model(model, timeout=timedelta(seconds=10))
        return model
    from transformers.distributed import DistributedConfig

    if torch.distributed.get_rank() == 0:
        model.save_pretrained(out_dir / "tiny")
    torch.distributed.barrier()
    model = type(model).from_pretrained(out_dir / "tiny", distributed_config=DistributedConfig(tp_size=2)).eval()
    model.set_attn_implementation("sdpa")
    attach_native(model, timeout=timedelta(seconds=10))  # what enable does, here with a short timeout
    assert tensor_parallel_of(model) is not None
    return model


def record_families_split(out_dir: Path, backend: str) -> dict:
    """`record_families` with each family's language model split by `backend`."""
    from fixtures.families import FAMILIES

    out = {}
    for name, family in FAMILIES.items():
        model = split_model(out_dir / name, backend, family.model)
        out[name] = record(model, family.inputs(family.build_processor()), family_config(family))
        out[name]["local_q_rows"] = local_q_rows(model)
    return out


def local_q_rows(model) -> int:
    """Output rows of this rank's q_proj at the scoring layer (4 heads of 8 in every tiny model: 32 unsplit)."""
    attn = model.get_decoder().layers[1].self_attn
    return attn.q_proj(torch.zeros(1, 1, model.get_decoder().config.hidden_size)).shape[-1]


def mapped_all_reduce_buffers() -> list[str]:
    """The DeepSpeed all-reduce buffers this process has mapped, as /proc/self/maps names them (a file that was
    unlinked ends in ' (deleted)')."""
    from adapttoken_plugin.launch import CPU_ALL_REDUCE_BUFFER

    lines = Path("/proc/self/maps").read_text().splitlines()
    return sorted({line.split(maxsplit=5)[5] for line in lines if CPU_ALL_REDUCE_BUFFER in line})


def main(out_dir: str, diverge: str = "none", backend: str = "deepspeed") -> None:
    from adapttoken_plugin.distributed import tensor_parallel_of
    from adapttoken_plugin.launch import init_rank

    init_rank(2, timedelta(seconds=60))
    rank = torch.distributed.get_rank()
    model = split_model(Path(out_dir), backend)
    tp = tensor_parallel_of(model)
    inputs = qwen_video_inputs()
    if rank == 1 and diverge == "pixels":
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"] + 1e-3
    try:
        if diverge == "stall":  # rank 1 never reaches the stage's first check; rank 0 must not wait forever
            if rank == 1:
                time.sleep(600)
            at.enable(model, CONFIGS["max"])
            model.generate(**inputs, max_new_tokens=6, do_sample=False)
            return
        result = record(model, inputs)
        result["families"] = record_families_split(Path(out_dir), backend)
    except at.AdaptTokenError as error:
        (Path(out_dir) / f"rank{rank}.err").write_text(f"{type(error).__name__}: {error}")
        sys.exit(3)
    result["local_q_rows"] = local_q_rows(model)
    result["tp_rank"], result["world_size"] = tp.rank, tp.world_size
    result["shm_buffers"] = mapped_all_reduce_buffers()
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
