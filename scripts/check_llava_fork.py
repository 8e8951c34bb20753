"""Check the LLaVA-NeXT integration against a fork: a tiny random LlavaQwenForCausalLM of that fork, built in
code, through each video layout (`mm_patch_merge_type` / `mm_newline_position`); prints a table.

    .venv-llava/bin/python scripts/check_llava_fork.py --package llavaction
    PYTHONPATH=/path/to/LLaVA-NeXT .venv-llava/bin/python scripts/check_llava_fork.py --package llava

Per layout: the fork's own generate with no key set vs an untouched twin (must be identical), the
selected generate at full budget vs the untouched model (same tokens, max logit difference), and a small
budget (visual tokens that reached the language model). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the forks' conversation.py fetches a tokenizer at import
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests_llava"))

import tiny_llava  # noqa: E402
import torch  # noqa: E402

from adapttoken_plugin.errors import AdaptTokenError  # noqa: E402
from adapttoken_plugin.integrations import llava  # noqa: E402

LAYOUTS = [("spatial_unpad", "grid"), ("spatial_unpad", "frame"), ("spatial_unpad", "one_token"),
           ("spatial_unpad", "no_token"), ("flat", "grid")]


def check(vision_dir: Path, package: str, merge: str, position: str, frames: int, budget: int) -> str:
    def model():
        return tiny_llava.llava_qwen(vision_dir, package=package, mm_patch_merge_type=merge,
                                     mm_newline_position=position)

    ids, video = tiny_llava.prompt_ids(llava.structure.image_token_index(package)), tiny_llava.video(frames)
    kw = dict(modalities=["video"], max_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True)
    untouched, subject = model(), model()
    try:
        reference = untouched.generate(ids, images=[video], **kw)
    except Exception as exc:  # noqa: BLE001 - report the fork's own failure and go on
        return f"| {merge} | {position} | the fork's own generate fails: {type(exc).__name__} | | |"
    llava.apply_if_configured(subject)
    off = subject.generate(ids, images=[video], **kw)
    identical = torch.equal(off.sequences, reference.sequences) and torch.equal(torch.stack(off.logits),
                                                                                torch.stack(reference.logits))
    total = frames * subject.get_2dPool(subject.encode_images(video[:1])).shape[1]
    subject.config.adapttoken = {"budget": total, "frames_per_group": 4}
    try:
        llava.apply_if_configured(subject)
        full = subject.generate(ids, images=[video], **kw)
        llava.enable(subject, {"budget": budget, "frames_per_group": 4})
        subject.generate(ids, images=[video], **kw)
    except AdaptTokenError as exc:
        return f"| {merge} | {position} | {identical} | refused: {exc} | |"
    diff = float((torch.stack(full.logits) - torch.stack(reference.logits)).abs().max())
    same = torch.equal(full.sequences, reference.sequences)
    kept = subject.adapttoken_trace.kept_tokens
    return f"| {merge} | {position} | {identical} | {same} (max logit diff {diff:.1e}) | {kept} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="llavaction", help="the fork's package name (llava, llavaction, ...)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--budget", type=int, default=23)
    args = parser.parse_args()
    classes = llava.find_model_classes(args.package)
    print(f"{args.package}: {sys.modules[args.package].__file__}; classes found by structure: "
          f"{[c.__name__ for c in classes]}")
    vision_dir = tiny_llava.save_vision_tower(Path(tempfile.mkdtemp()))
    print(f"\n| merge type | newline position | no key: identical | full budget: same answer | budget {args.budget}: "
          "tokens sent |\n|---|---|---|---|---|")
    for merge, position in LAYOUTS:
        print(check(vision_dir, args.package, merge, position, args.frames, args.budget))


if __name__ == "__main__":
    main()
