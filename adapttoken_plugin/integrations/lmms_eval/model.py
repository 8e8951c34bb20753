"""`AdaptTokenLMM`: the lmms-eval model class the `adapttoken_*` ids are built on.

Why a small `lmms` subclass instead of subclasses of lmms-eval's `qwen2_5_vl`, `internvl_hf` or
`llava_onevision`: their `generate_until` decodes the whole clip at once (qwen-vl-utils, or decord
`get_batch` at native resolution) and gives it to the processor, so a 4,096-frame setting needs the
whole video in memory, which is what AdaptToken's streaming pipeline exists to avoid. Reusing only
their `__init__` would still import decord (and, for `llava_onevision`, the LLaVA-NeXT codebase) at
module level and hard-wire CUDA and bfloat16. What lmms-eval asks of a model is small: be built from
`--model_args`, and answer `generate_until` requests. Here the unmodified transformers class and its
processor are loaded from `pretrained`, and each request is answered by `Pipeline.answer(video,
prompt)`, which decodes, encodes and scores one group of frames at a time and keeps only the
candidate tokens' features until the final pass.

The prompt is the task's own `doc_to_text` output (question, options and the task's instruction),
passed verbatim, so the reply is what the task's `process_results` parses (a letter for the
multiple-choice tasks). Decoding is greedy; one request at a time (batch size 1).

Subclasses (one module per family) name the transformers class and which of lmms-eval's usual
arguments of that family they honour (`config_aliases`, `processor_args`); every other setting is
an `adapttoken_*` key of `AdaptTokenConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from ...config import AdaptTokenConfig
from ...distributed import is_main_process
from ...errors import ConfigError, NoVideoError, UnsupportedInputError
from ...pipeline import Pipeline
from ...video import BACKENDS
from .arguments import RopeOverride, parse_model_args, rope_override
from .tensor_parallel import tensor_parallel_lmms_eval

DEFAULT_MAX_NEW_TOKENS = 16
DTYPES = ("auto", "bfloat16", "float16", "float32")


class AdaptTokenLMM(lmms):
    """An unmodified transformers video model answering lmms-eval requests through the streaming `Pipeline`.

    Args:
        pretrained: checkpoint directory or hub id, loaded with the family's transformers class.
        device: where the model runs (default: `cuda` when available, else `cpu`; one GPU per process
            under `accelerate launch`).
        device_map: passed to `from_pretrained` instead of moving the model (`auto` splits a large
            model's layers over the visible GPUs, one process).
        batch_size: must be 1 (requests are answered one at a time).
        torch_dtype: `auto` (the checkpoint's dtype), `bfloat16`, `float16` or `float32`.
        attn_implementation: passed to `from_pretrained` (None: transformers' default, sdpa).
        video_decode_backend: `auto` (torchcodec when it loads, else PyAV), `torchcodec`, `pyav` or `decord`
            (the streaming pipeline's frame reader).
        rope_scaling: `yarn` replaces the checkpoint's rotary embedding with YaRN in the loaded config (None: the
            checkpoint's own); with `rope_factor` (required) and `rope_original_max_position_embeddings` (None:
            the checkpoint's `max_position_embeddings`). With `adapttoken_selector=full` this is the unmodified
            model with YaRN, the base run of a fair comparison.
        **kwargs: `adapttoken_*` settings (see `AdaptTokenConfig`) and the family arguments the
            subclass lists; anything else raises `ConfigError`.
    """

    is_simple = True
    model_id: ClassVar[str] = ""
    model_class: ClassVar[str] = ""  # transformers class name, loaded with from_pretrained
    config_aliases: ClassVar[dict[str, str]] = {}  # lmms-eval family argument -> AdaptTokenConfig key
    processor_args: ClassVar[tuple[str, ...]] = ()  # lmms-eval family arguments for AutoProcessor

    def __init__(
        self,
        pretrained: str,
        device: str | None = None,
        device_map: str | None = None,
        batch_size: int | str = 1,
        torch_dtype: str = "auto",
        attn_implementation: str | None = None,
        video_decode_backend: str = "auto",
        rope_scaling: str | None = None,
        rope_factor: float | str | None = None,
        rope_original_max_position_embeddings: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        args = parse_model_args(self.model_id, kwargs, self.config_aliases, self.processor_args)
        rope = rope_override(rope_scaling, rope_factor, rope_original_max_position_embeddings)
        if str(batch_size) != "1":
            raise ConfigError(f"batch_size={batch_size!r}: {self.model_id} answers one request at a time; use 1")
        if torch_dtype not in DTYPES:
            raise ConfigError(f"torch_dtype={torch_dtype!r} is not known: expected one of {DTYPES}")
        if video_decode_backend not in BACKENDS:
            raise ConfigError(f"video_decode_backend={video_decode_backend!r} is not known: expected one of {BACKENDS}")
        device_map = _optional(device_map)
        self.tensor_parallel = tensor_parallel_lmms_eval()
        if self.tensor_parallel:
            # `adapttoken lmms-eval --tp N ...`: every rank answers every document with its slice of the
            # language model; lmms-eval sees one process (tensor_parallel.lmms_eval_sees_one_process)
            if device_map is not None:
                raise ConfigError(f"device_map={device_map!r} cannot be combined with tensor parallelism")
            self.accelerator, self._rank, self._world_size = None, 0, 1
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            self._device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        else:
            from accelerate import Accelerator

            self.accelerator = Accelerator()
            self._rank = self.accelerator.process_index
            self._world_size = self.accelerator.num_processes
            self._device = torch.device(self._default_device(_optional(device)))
        self.adapttoken_config: AdaptTokenConfig = args.config
        model, processor = self.load(pretrained, device_map, torch_dtype, _optional(attn_implementation),
                                     args.processor_kwargs, rope)
        if self.tensor_parallel:
            from loguru import logger  # lmms-eval's own logger

            from ..deepspeed import shard_language_model

            tp = shard_language_model(model)
            logger.info(f"{self.model_id}: language model split over {tp.world_size} tensor-parallel ranks "
                        f"(DeepSpeed inference); this is rank {tp.rank}")
        self.pipeline = Pipeline(model, processor, self.adapttoken_config, backend=video_decode_backend)

    def _default_device(self, device: str | None) -> str:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self._world_size > 1 and device.startswith("cuda"):  # accelerate launch: one GPU per process
            return f"cuda:{self.accelerator.local_process_index}"
        return device

    def load(self, pretrained: str, device_map: str | None, torch_dtype: str, attn_implementation: str | None,
             processor_kwargs: dict[str, Any], rope: RopeOverride | None = None) -> tuple[Any, Any]:
        """The unmodified transformers model (eval mode; on `self.device` unless `device_map`) and its processor;
        `rope`: a rope scaling set in the checkpoint's config before the weights load (the model's own classes
        compute it)."""
        import transformers

        load_kwargs: dict[str, Any] = {"dtype": torch_dtype}
        if rope is not None:
            config = transformers.AutoConfig.from_pretrained(pretrained)
            rope.apply(config)
            load_kwargs["config"] = config
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        if device_map is not None:
            load_kwargs["device_map"] = device_map
        model = getattr(transformers, self.model_class).from_pretrained(pretrained, **load_kwargs).eval()
        if device_map is None:
            model.to(self._device)
        processor = transformers.AutoProcessor.from_pretrained(pretrained, **processor_kwargs)
        return model, processor

    @property
    def device(self) -> torch.device:
        """Where the model runs (lmms-eval's evaluator puts its rank-count tensors here)."""
        return self._device

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """One greedy answer per request, in request order; each request's video goes through the pipeline."""
        replies = []
        quiet = self.rank != 0 or not is_main_process(self.pipeline.model)  # one progress bar per evaluation
        for request in tqdm(requests, disable=quiet, desc=f"{self.model_id} answering"):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            video = _single_video(doc_to_visual(self.task_dict[task][split][doc_id]), task, doc_id)
            if "<image>" in context:
                raise UnsupportedInputError(f"{task} doc {doc_id}: the prompt interleaves <image> frames; "
                                            f"{self.model_id} takes one video and the question")
            answer = self.pipeline.answer(video, context, max_new_tokens=_max_new_tokens(gen_kwargs, task))
            reply = _cut_at_stops(answer.text, gen_kwargs.get("until"))
            replies.append(reply)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), reply)
        return replies

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{self.model_id} answers generate_until tasks only (the video benchmarks)")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{self.model_id} answers single-round generate_until tasks only")


def _optional(value: Any) -> Any:
    """lmms-eval passes `None` as the string 'None'."""
    return None if isinstance(value, str) and value.strip().lower() in ("none", "") else value


def _single_video(visuals: Sequence[Any] | None, task: str, doc_id: int) -> str:
    """The one video path a document's `doc_to_visual` returned (images or several videos are refused)."""
    paths = [v for v in (visuals or []) if isinstance(v, str)]
    if len(paths) != 1 or len(paths) != len(visuals or []):
        raise NoVideoError(f"{task} doc {doc_id}: doc_to_visual gave {len(visuals or [])} visual(s) "
                           f"({[type(v).__name__ for v in visuals or []]}); expected exactly one video path")
    return paths[0]


def _max_new_tokens(gen_kwargs: dict[str, Any], task: str) -> int:
    """The task's generation length; sampling or beam search is refused (the pipeline decodes greedily)."""
    if gen_kwargs.get("do_sample") or float(gen_kwargs.get("temperature") or 0) > 0 or int(
            gen_kwargs.get("num_beams") or 1) > 1:
        raise UnsupportedInputError(f"{task}: generation_kwargs ask for sampling or beam search ({gen_kwargs}); "
                                    "AdaptToken's final pass decodes greedily")
    return int(gen_kwargs.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)


def _cut_at_stops(text: str, until: str | Sequence[str] | None) -> str:
    """The reply up to the first of the task's stop strings (lmms-eval's `until`)."""
    for stop in [until] if isinstance(until, str) else (until or []):
        if stop:
            text = text.split(stop)[0]
    return text
