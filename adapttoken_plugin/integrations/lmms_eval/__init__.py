"""lmms-eval 0.7.3 integration: AdaptToken models registered through the `lmms_eval.models` entry point.

    lmms-eval --model adapttoken_qwen2_5_vl \
        --model_args pretrained=Qwen/Qwen2.5-VL-7B-Instruct,adapttoken_budget=7040,adapttoken_max_frames=4096 \
        --tasks videomme_local --include_path eval/tasks --output_path runs/eval

Modules: `manifests` (the entry point; imports neither torch nor a model module), `arguments`
(`--model_args` into an `AdaptTokenConfig`), `model` (the shared lmms-eval model class), `tensor_parallel`
(lmms-eval on tensor-parallel ranks: `adapttoken lmms-eval --tp N`), and one module per model family.
Nothing is imported here, so resolving the manifests stays cheap.
"""
