"""The local benchmark tasks (eval/tasks) load through lmms-eval's TaskManager from a tiny local copy.

Each test writes two documents in the benchmark's own annotation format plus (empty) video files,
points a copy of the task yaml at them (the two lines marked EDIT, as a user does), and checks what
lmms-eval's task object makes of them: the video path, the prompt, the per-document score and the
aggregate, all against values written out by hand from the benchmark's format.
"""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from lmms_eval.tasks import TaskManager, get_task_dict

TASKS_DIR = Path(__file__).resolve().parents[2] / "eval" / "tasks"


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def local_task(tmp_path, folder, annotations, video_dir, model_name=None):
    """lmms-eval's task object for a copy of eval/tasks/<folder> whose EDIT paths point at tmp files."""
    copy = tmp_path / "tasks" / folder
    shutil.copytree(TASKS_DIR / folder, copy)
    yaml_file = next(copy.glob("*.yaml"))
    text = yaml_file.read_text()
    text, n_data = re.subn(r"(\w+): \S+(\s+# EDIT: the annotations)", rf"\g<1>: {annotations}\g<2>", text)
    text, n_video = re.subn(r"video_dir: \S+(\s+# EDIT)", rf"video_dir: {video_dir}\g<1>", text)
    assert n_data == 1 and n_video == 1, "the EDIT lines README documents are missing"
    yaml_file.write_text(text)
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False, model_name=model_name)
    name = re.search(r"^task: (\S+)", text, re.M).group(1)
    return get_task_dict([name], manager)[name]


def touch(directory, *names):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"")
    return directory


def score(task, doc, reply):
    (value,) = task.process_results(doc, [reply]).values()
    return value


def aggregate(task, values):
    (fn,) = task.aggregation().values()
    return fn(values)


VIDEOMME_DOCS = [
    dict(video_id="001", duration="short", domain="Knowledge", sub_category="Astronomy", url="u", videoID="vidA",
         question_id="001-1", task_type="Counting Problem", question="How many planets are shown?",
         options=["A. 1", "B. 2", "C. 3", "D. 4"], answer="C"),
    dict(video_id="002", duration="long", domain="Sports Competition", sub_category="Football", url="u",
         videoID="vidB", question_id="002-1", task_type="Action Recognition", question="Who scores?",
         options=["A. red", "B. blue", "C. nobody", "D. both"], answer="A"),
]


def test_videomme_local(tmp_path):
    pd.DataFrame(VIDEOMME_DOCS).to_parquet(tmp_path / "test.parquet")
    videos = touch(tmp_path / "data", "vidA.mp4", "vidB.mkv")
    task = local_task(tmp_path, "videomme_local", tmp_path / "test.parquet", videos)
    docs = list(task.test_docs())
    assert [d["videoID"] for d in docs] == ["vidA", "vidB"]
    assert task.doc_to_visual(docs[0]) == [str(videos / "vidA.mp4")]
    assert task.doc_to_visual(docs[1]) == [str(videos / "vidB.mkv")]
    assert task.doc_to_text(docs[0]) == (
        "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
        "Respond with only the letter (A, B, C, or D) of the correct option.\nHow many planets are shown?\n"
        "A. 1\nB. 2\nC. 3\nD. 4\n\nAnswer with the option's letter from the given choices directly.")
    right, wrong = score(task, docs[0], "C"), score(task, docs[1], "The answer is (B).")
    assert (right["score"], wrong["score"], wrong["pred_answer"]) == (1.0, 0.0, "B")
    assert aggregate(task, [right, wrong]) == 50.0  # percent, as lmms-eval's videomme
    (videos / "vidA.mp4").unlink()
    with pytest.raises(FileNotFoundError, match="vidA"):
        task.doc_to_visual(docs[0])


def test_videomme_local_keeps_the_llava_vid_prompt_and_the_video_dir(tmp_path):
    pd.DataFrame(VIDEOMME_DOCS).to_parquet(tmp_path / "test.parquet")
    videos = touch(tmp_path / "data", "vidA.mp4", "vidB.mp4")
    task = local_task(tmp_path, "videomme_local", tmp_path / "test.parquet", videos, model_name="adapttoken_llava_vid")
    doc = next(iter(task.test_docs()))
    assert task.doc_to_text(doc).endswith("D. 4\nThe best answer is:")
    assert task.doc_to_visual(doc) == [str(videos / "vidA.mp4")]


def test_videomme_local_qwen3_vl_prompt(tmp_path):
    pd.DataFrame(VIDEOMME_DOCS).to_parquet(tmp_path / "test.parquet")
    videos = touch(tmp_path / "data", "vidA.mp4", "vidB.mp4")
    task = local_task(tmp_path, "videomme_local", tmp_path / "test.parquet", videos, model_name="adapttoken_qwen3_vl")
    doc = next(iter(task.test_docs()))
    assert task.doc_to_text(doc) == ("Question: How many planets are shown?\nOptions:\nA. 1\nB. 2\nC. 3\nD. 4\n"
                                     "Answer with the option letter only.")


def test_longvideobench_local(tmp_path):
    docs = [dict(id="86CxyhFV9MI_0", video_path="86CxyhFV9MI.mp4", question="What is on the table?",
                 candidates=["a cup", "a book", "a phone"], correct_choice=1, duration_group=600,
                 question_category="T3O"),
            dict(id="q2", video_path="sub/q2.mp4", question="When does it rain?",
                 candidates=["never", "at 1 min", "at 2 min", "at 3 min", "at 4 min"], correct_choice=4,
                 duration_group=3600, question_category="S2E")]
    (tmp_path / "lvb_val.json").write_text(json.dumps(docs))
    videos = touch(tmp_path / "videos", "86CxyhFV9MI.mp4")
    touch(videos / "sub", "q2.mp4")
    task = local_task(tmp_path, "longvideobench_local", tmp_path / "lvb_val.json", videos)
    loaded = list(task.test_docs())
    assert task.doc_to_visual(loaded[1]) == [str(videos / "sub" / "q2.mp4")]
    assert task.doc_to_text(loaded[0]) == ("What is on the table?\nA. a cup\nB. a book\nC. a phone\n"
                                           "Answer with the option's letter from the given choices directly.\n")
    right, wrong = score(task, loaded[1], "E. at 4 min"), score(task, loaded[0], "A")
    assert (right["parsed_pred"], right["answer"], wrong["answer"]) == ("E", "E", "B")
    assert aggregate(task, [right, wrong]) == 0.5  # a fraction, as lmms-eval's longvideobench


def test_lvbench_local(tmp_path):
    docs = [dict(video_path="v1.mp4", question="What happens first?\n(A) x\n(B) y\n(C) z\n(D) w", answer="B"),
            dict(video_path="v2.mp4", question="Who enters?\n(A) x\n(B) y\n(C) z\n(D) w", answer="D")]
    pd.DataFrame(docs).to_parquet(tmp_path / "lvbench.parquet")
    videos = touch(tmp_path / "videos", "v1.mp4", "v2.mp4")
    task = local_task(tmp_path, "lvbench_local", tmp_path / "lvbench.parquet", videos)
    loaded = list(task.test_docs())
    assert task.doc_to_visual(loaded[0]) == [str(videos / "v1.mp4")]
    assert task.doc_to_text(loaded[0]) == ("What happens first?\n(A) x\n(B) y\n(C) z\n(D) w\n"
                                           "Answer the question with the option letter")
    values = [score(task, loaded[0], "(B) y"), score(task, loaded[1], "A")]
    assert values == [1.0, 0.0] and aggregate(task, values) == 0.5


def test_mlvu_local(tmp_path):
    docs = [dict(video_name="needle_1.mp4", question="What is hidden?\n(A) a\n(B) b\n(C) c\n(D) d", answer="A",
                 task_type="needle"),
            dict(video_name="count_1.mp4", question="How many?\n(A) 1\n(B) 2\n(C) 3\n(D) 4", answer="C",
                 task_type="count"),
            dict(video_name="count_2.mp4", question="How many?\n(A) 1\n(B) 2\n(C) 3\n(D) 4", answer="D",
                 task_type="count")]
    (tmp_path / "mlvu_dev.json").write_text(json.dumps(docs))
    videos = touch(tmp_path / "video", "needle_1.mp4", "count_1.mp4", "count_2.mp4")
    task = local_task(tmp_path, "mlvu_local", tmp_path / "mlvu_dev.json", videos)
    loaded = list(task.test_docs())
    assert task.doc_to_visual(loaded[1]) == [str(videos / "count_1.mp4")]
    assert task.doc_to_text(loaded[0]) == ("What is hidden?\n(A) a\n(B) b\n(C) c\n(D) d\nOnly give the best option.\n"
                                           "Best option: (")
    values = [score(task, loaded[0], "A) a"), score(task, loaded[1], "C"), score(task, loaded[2], "A")]
    assert aggregate(task, values) == 75.0  # M-Avg: mean of needle 100 % and count 50 %, in percent


def test_needle_task_prompt_is_the_pipeline_prompt(tmp_path):
    from adapttoken_plugin.integrations.lmms_eval.needle_data import write_needle_dataset
    from adapttoken_plugin.needle import OPTIONS, QUESTION
    from adapttoken_plugin.pipeline import format_question

    annotations = write_needle_dataset(tmp_path / "needle", count=2, num_frames=8)
    copy = tmp_path / "tasks" / "adapttoken_needle"
    shutil.copytree(TASKS_DIR / "adapttoken_needle", copy)
    yaml_file = copy / "adapttoken_needle.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("runs/needle_eval/needle.jsonl", str(annotations)))
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    task = get_task_dict(["adapttoken_needle"], manager)["adapttoken_needle"]
    docs = list(task.test_docs())
    assert len(docs) == 2 and all(Path(task.doc_to_visual(d)[0]).is_file() for d in docs)
    assert task.doc_to_text(docs[0]) == format_question(QUESTION, list(OPTIONS))
    assert score(task, docs[0], docs[0]["answer"]) == 1.0 and score(task, docs[0], "none") == 0.0
