"""What a sweep runs over: multiple-choice questions about video files.

Two sources:

- `needle_items`: the synthetic needle set (`adapttoken_plugin.needle`), videos written as mp4 once;
  each item samples every frame of its video (fps 4, max_frames = its length).
- `annotation_items`: a local benchmark copy described by a JSON file (a list of records) or a JSONL
  file (one record per line). A record:

      {"video": "clips/abc.mp4", "question": "What is cut in half?",
       "options": ["tomato", "cucumber", "bread", "cheese"], "answer": "B",
       "id": "abc-1", "subset": "long"}

  `video` is relative to the annotation file's folder (or absolute); `answer` is the option letter;
  `id` (default: the record's index) and `subset` (default "all"; the table reports per subset) are
  optional. Problems raise DatasetError naming the file, the record and the key.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..needle import VIDEO_FPS, question_set, write_video_file


@dataclass(frozen=True)
class Item:
    """One question. `settings`: config values this item needs (the needle set: fps, max_frames); they hold over
    the sweep's base config (`adapttoken ablate` drops those its `--set` names, which then win)."""

    item_id: str
    video: Path
    question: str
    options: tuple[str, ...]
    answer: str
    subset: str = "all"
    settings: dict[str, Any] = field(default_factory=dict, hash=False)


def needle_items(count: int, lengths: tuple[int, ...], video_dir: str | Path, seed: int = 0,
                 on_frames: Callable[[int, int], None] | None = None) -> list[Item]:
    """`count` needle questions spread over the video lengths (frames); writes missing videos to video_dir
    (`write_video_file`: a video is reused only when complete). `on_frames(done, total)`: progress in frames over
    every video (a reused one counts whole at once)."""
    items = []
    questions = question_set(count, tuple(lengths), seed=seed)
    total, before = sum(q.num_frames for q in questions), 0
    for q in questions:
        progress = None if on_frames is None else lambda done, _, start=before: on_frames(start + done, total)
        video = write_video_file(q, Path(video_dir) / f"needle_s{q.seed}_f{q.num_frames}.mp4", on_frame=progress)
        before += q.num_frames
        if on_frames is not None:
            on_frames(before, total)
        items.append(Item(f"needle-s{q.seed}-f{q.num_frames}", video, q.question, tuple(q.options), q.answer_letter,
                          subset=f"{q.num_frames} frames", settings={"fps": VIDEO_FPS, "max_frames": q.num_frames}))
    return items


def annotation_items(path: str | Path) -> list[Item]:
    """Items of a JSON (list of records) or JSONL annotation file; see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(records, list) or not records:
        raise DatasetError(f"{path}: expected a non-empty list of records")
    items = [_item(path, i, r) for i, r in enumerate(records)]
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: record ids are not unique")
    return items


def _item(path: Path, index: int, record: Any) -> Item:
    where = f"{path}, record {index}"
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected an object, got {type(record).__name__}")
    for key in ("video", "question", "options", "answer"):
        if key not in record:
            raise DatasetError(f"{where}: missing key {key!r}")
    options = record["options"]
    if not isinstance(options, list) or not 2 <= len(options) <= 26 or not all(isinstance(o, str) for o in options):
        raise DatasetError(f"{where}: 'options' must be a list of 2 to 26 strings")
    letters = string.ascii_uppercase[: len(options)]
    answer = str(record["answer"]).strip()
    if answer not in letters:
        raise DatasetError(f"{where}: answer {record['answer']!r} is not one of the option letters {letters}")
    video = Path(record["video"])
    video = video if video.is_absolute() else path.parent / video
    if not video.is_file():
        raise DatasetError(f"{where}: video {str(video)!r} does not exist")
    return Item(str(record.get("id", index)), video, str(record["question"]), tuple(options), answer,
                subset=str(record.get("subset", "all")))
