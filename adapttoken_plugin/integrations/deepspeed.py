"""DeepSpeed inference tensor parallelism of the language model only.

`deepspeed.init_inference` is applied to `model.get_decoder()` with an explicit injection policy on
its decoder-layer class (`DECODER_LAYER_POLICIES`): inside each decoder layer the q/k/v, gate and up
projections are split column-wise (each rank keeps whole attention heads) and the attention and MLP
output projections row-wise with an all-reduce. The vision tower, the embeddings and `lm_head` stay
replicated, so every rank computes the same visual features and full logits. DeepSpeed's automatic
TP (no policy) is never used: it walks every module list of the model, including the vision blocks,
whose fused `attn.qkv` it would split across q, k and v.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..distributed import DEFAULT_TIMEOUT, TensorParallel, attach
from ..errors import AdaptTokenError, UnsupportedModelError

_OUTPUT_LINEARS = ("self_attn.o_proj", "mlp.down_proj")

#: decoder-layer class of each supported family's language model -> its row-parallel output projections
DECODER_LAYER_POLICIES: dict[str, tuple[str, ...]] = {
    "Qwen2_5_VLDecoderLayer": _OUTPUT_LINEARS,  # Qwen2.5-VL
    "Qwen2VLDecoderLayer": _OUTPUT_LINEARS,  # Qwen2-VL
    "Qwen3VLTextDecoderLayer": _OUTPUT_LINEARS,  # Qwen3-VL
    "Qwen2DecoderLayer": _OUTPUT_LINEARS,  # InternVL3 / LLaVA-OneVision / LLaVA-Video (Qwen2 language models)
    "Qwen3DecoderLayer": _OUTPUT_LINEARS,  # InternVL3.5
    "LlamaDecoderLayer": _OUTPUT_LINEARS,  # InternVL2.5 (InternLM2 as Llama), LLaVA-NeXT-Video (Vicuna)
}


def shard_language_model(model: Any, timeout: timedelta = DEFAULT_TIMEOUT) -> TensorParallel:
    """Split `model`'s language model over all ranks of the initialised process group (in place).

    Every rank must hold the same full model (same weights) and call this together. The whole model is
    moved to this rank's accelerator first (`cuda:LOCAL_RANK`, or the CPU). Returns the tensor-parallel
    group, also attached to `model` so the selector stage reduces its attention scores across ranks.

    Raises:
        AdaptTokenError: torch.distributed is not initialised (start the ranks with `adapttoken answer --tp N`
            or `adapttoken lmms-eval --tp N`, or torchrun / deepspeed and `launch.init_rank`).
        UnsupportedModelError: the decoder-layer class has no policy, or the heads do not divide by the ranks.
    """
    from ..checks import require

    require("deepspeed", "tensor parallelism (shard_language_model, --tp N)", "deepspeed")
    import deepspeed
    import torch.distributed as dist
    from deepspeed.accelerator import get_accelerator

    if not dist.is_initialized():
        raise AdaptTokenError("torch.distributed is not initialised: start the ranks with `adapttoken answer "
                              "--tp N ...` or `adapttoken lmms-eval --tp N ...` (or torchrun / deepspeed)")
    tp_size = dist.get_world_size()
    decoder = model.get_decoder()
    layer_class = type(decoder.layers[0])
    policy = DECODER_LAYER_POLICIES.get(layer_class.__name__)
    if policy is None:
        raise UnsupportedModelError(f"no tensor-parallel policy for decoder layer {layer_class.__name__}; "
                                    f"supported: {sorted(DECODER_LAYER_POLICIES)}")
    text_config = decoder.config
    heads, kv_heads = text_config.num_attention_heads, text_config.num_key_value_heads
    if heads % tp_size or kv_heads % tp_size:
        raise UnsupportedModelError(f"{heads} attention heads and {kv_heads} key/value heads cannot be split over "
                                    f"{tp_size} ranks: use a number of ranks that divides both")
    model.to(get_accelerator().current_device_name())
    engine = deepspeed.init_inference(
        decoder, tensor_parallel={"tp_size": tp_size}, dtype=next(decoder.parameters()).dtype,
        injection_policy={layer_class: policy},
    )
    # the engine shards `decoder` in place; the model keeps calling its own (now sharded) decoder
    return attach(model, engine.mp_group, timeout)
