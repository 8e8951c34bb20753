"""End-to-end check of `adapttoken_llava_vid` through the real lmms-eval 0.7.3 `llava_vid` (not run in CI).

Needs a venv with transformers 4.51.3, lmms-eval 0.7.3 (with decord and PyAV), a LLaVA-NeXT fork and this
package, e.g.:
    python3 -m venv /tmp/venv-lmms && P=/tmp/venv-lmms/bin/python
    $P -m pip install torch==2.14.1 torchvision==0.29.1
    $P -m pip install lmms-eval==0.7.3 transformers==4.51.3 torch==2.14.1 torchvision==0.29.1 decord einops
    $P -m pip install --no-deps llavaction==0.0.1 && $P -m pip install --no-deps -e .
    $P scripts/check_lmms_eval_llava_vid.py

Builds a tiny random LLaVA-Video checkpoint (tiny_llava, a word-level tokenizer) and an mp4, then
runs `generate_until` as lmms-eval does (create_from_arg_string, decord frames, the image processor,
the `qwen_1_5` template) three ways: stock `llava_vid`, `adapttoken_llava_vid` at full budget (must
give the stock answer) and at a small budget; prints the answers and the kept token counts.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the forks' conversation.py fetches a tokenizer at import
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests_llava"))

import av  # noqa: E402
import numpy as np  # noqa: E402
import tiny_llava  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402


def checkpoint(directory: Path) -> Path:
    """A tiny LLaVA-Video-like checkpoint: the fork's model, a CLIP tower, a word-level tokenizer."""
    path = directory / "tiny-llava-qwen"  # the fork's loader picks its class from "llava" and "qwen" in the name
    tiny_llava.llava_qwen(tiny_llava.save_vision_tower(directory / "clip")).save_pretrained(path)
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(150)}, unk_token="t3"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["<|im_end|>", "<|im_start|>"])  # the template's stop word is one token
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="t2", eos_token="t1").save_pretrained(path)
    return path


def noise_video(path: Path, frames: int = 32, fps: int = 4) -> Path:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def main() -> None:
    from lmms_eval.api.instance import Instance

    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    work = Path(tempfile.mkdtemp())
    ckpt, video = checkpoint(work), noise_video(work / "noise.mp4")
    args = (f"pretrained={ckpt},conv_template=qwen_1_5,max_frames_num=16,mm_spatial_pool_mode=bilinear,"
            "device_map=auto,torch_dtype=bfloat16")
    own = ",adapttoken_frames_per_group=4,adapttoken_llava_package=llavaction"
    request = Instance(request_type="generate_until", idx=0, metadata={"task": "t", "doc_id": 0, "repeats": 1},
                       arguments=("t5 t6 t7 t8", {"max_new_tokens": 4}, lambda doc: [str(video)], 0, "t", "test"))
    results = {}
    for name, arg_string in (("adapttoken budget 40", args + ",adapttoken_budget=40" + own),
                             ("adapttoken full budget", args + ",adapttoken_budget=100000" + own),
                             ("stock llava_vid", args)):
        if name == "stock llava_vid":  # importable now: `llava` stands for the fork
            from lmms_eval.models.simple.llava_vid import LlavaVid as cls
        else:
            cls = AdaptTokenLlavaVid
        model = cls.create_from_arg_string(arg_string, {"batch_size": 1, "device": "cpu"})
        model.task_dict = {"t": {"test": {0: {}}}}
        answer = model.generate_until([request])
        trace = getattr(model.model, "adapttoken_trace", None)
        results[name] = answer
        kept = "all" if trace is None else f"{trace.kept_tokens} of {trace.total_tokens} ({trace.num_frames} frames)"
        print(f"| {name} | {type(model).__module__} | {answer} | {kept} |")
    print("full budget == stock:", results["adapttoken full budget"] == results["stock llava_vid"])


if __name__ == "__main__":
    main()
