"""Bindings to other software (DeepSpeed inference, lmms-eval, ...), one module each."""
