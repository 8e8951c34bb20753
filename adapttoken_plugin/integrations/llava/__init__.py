"""AdaptToken on LLaVA-NeXT codebase forks (package `llava`, `llavaction`, or any fork's name).

    model = load_pretrained_model(path, None, "llava_qwen", overwrite_config={"adapttoken": {"budget": 4096}})[1]
    adapttoken_plugin.integrations.llava.apply_if_configured(model)   # no-op without the key
    model.generate(input_ids, images=[video], modalities=["video"], max_new_tokens=16)   # selected

Which methods it relies on: `structure.py`. Where the newlines go for a ragged set of kept tokens:
`newlines.py`. Works on transformers 4.x (what the forks need); imports no transformers 5 names.
"""

from .binding import apply_if_configured, config_of, disable, enable, is_enabled
from .structure import REQUIRED_METHODS, find_model_classes, is_llava_model

__all__ = ["REQUIRED_METHODS", "apply_if_configured", "config_of", "disable", "enable", "find_model_classes",
           "is_enabled", "is_llava_model"]
