"""Integrations with other software: LLaVA-NeXT codebase forks (`llava`), lmms-eval (`lmms_eval`)."""
