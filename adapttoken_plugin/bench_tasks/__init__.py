"""Benchmark tasks beyond the needle (issue 13), modelled on MLVU / LongVideoBench question types.

Every task makes four-option questions about generated videos, deterministic by seed, each recording
its evidence frames: `needle` (what colour), `order` (which colour first), `count` (how many flashes),
`detail` (a small shape inside one visual token), `distractor` (a still shape among salient decoys) and
`salient-order` (which colour first, of a long large event and a brief small one).

    q = make_task_question("order", seed=3, num_frames=1024)
    write_video_file(q, "order3.mp4")     # real mp4 through PyAV, decoded like user videos
    q.answer_letter, q.evidence_frames
"""

from __future__ import annotations

from . import count, detail, distractor, needle, order, salient_order  # noqa: F401  (each registers its task)
from .base import FRAME_SIDE, TASKS, Event, Task, TaskQuestion, iter_frames, write_video_file


def make_task_question(task: str, seed: int, num_frames: int) -> TaskQuestion:
    """A question of the registered `task` (see `TASKS`) over a video of `num_frames` frames."""
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    return TASKS[task].make(seed, num_frames)


def task_question_set(count_per_task: int, lengths: tuple[int, ...], tasks: tuple[str, ...] | None = None,
                      seed: int = 0) -> list[TaskQuestion]:
    """`count_per_task` questions of every task, spread evenly over the video lengths (frames), fixed by `seed`."""
    names = tasks or tuple(TASKS)
    return [make_task_question(name, seed * 100_003 + 1000 * k + i, lengths[i % len(lengths)])
            for k, name in enumerate(names) for i in range(count_per_task)]


__all__ = ["FRAME_SIDE", "TASKS", "Event", "Task", "TaskQuestion", "iter_frames", "make_task_question",
           "task_question_set", "write_video_file"]
