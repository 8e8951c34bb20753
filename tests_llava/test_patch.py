"""patches/llava-next-adapttoken.patch and patches/check_patch.sh, against the installed fork's own files.

The patch is made against upstream LLaVA-NeXT (`llava/model/builder.py`, checked against
LLaVA-VL/LLaVA-NeXT df17966); `llavaction`'s builder has the same lines, so CI (no network) checks and
applies it to a copy of the installed fork and loads a checkpoint through the patched builder.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import llavaction
from tiny_llava import llava_qwen

ROOT = Path(__file__).resolve().parents[1]
PATCH = ROOT / "patches" / "llava-next-adapttoken.patch"
CHECK = ROOT / "patches" / "check_patch.sh"
FORK = Path(llavaction.__file__).parent


def check(path):
    return subprocess.run(["bash", str(CHECK), str(path)], capture_output=True, text=True)


def test_the_patch_is_a_few_added_lines_in_the_builder():
    lines = PATCH.read_text().splitlines()
    files = [line for line in lines if line.startswith("+++ ")]
    added = [line for line in lines if line.startswith("+") and not line.startswith("+++")]
    removed = [line for line in lines if line.startswith("-") and not line.startswith("---")]
    assert files == ["+++ b/llava/model/builder.py"] and len(added) <= 5 and removed == []
    assert any("apply_if_configured(model)" in line for line in added)


def test_check_script_on_a_fork_copy_then_on_the_patched_copy(tmp_path):
    copy = tmp_path / "llavaction"
    shutil.copytree(FORK, copy, ignore=shutil.ignore_patterns("__pycache__"))
    result = check(copy)
    assert result.returncode == 0, result.stderr
    assert "applies" in result.stdout
    subprocess.run(["git", "apply", "-p2", str(PATCH)], cwd=copy, check=True)
    again = check(copy)  # already applied: the check must now fail
    assert again.returncode == 1 and "does NOT apply" in again.stderr
    assert check(tmp_path).returncode == 2  # not a LLaVA-NeXT tree


def test_the_patched_builder_switches_it_on_only_with_the_flag(tmp_path, vision_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    site = tmp_path / "site"
    shutil.copytree(FORK, site / "llavaction", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "apply", "-p2", str(PATCH)], cwd=site / "llavaction", check=True)
    checkpoint = tmp_path / "tiny-llava-qwen"
    llava_qwen(vision_dir).save_pretrained(checkpoint)
    vocab = {f"t{i}": i for i in range(150)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="t3"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="t2").save_pretrained(checkpoint)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "load_with_patched_builder.py"),
                          str(checkpoint)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["fork"].startswith(str(site))  # the patched copy was the one imported
    assert report["flag"] == {"enabled": True, "instance_generate": True, "kept": 8}
    assert report["no_flag"] == {"enabled": False, "instance_generate": False, "kept": None}
