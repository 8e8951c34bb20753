"""Integrations with other software (evaluation harnesses, model codebases); each one its own subpackage."""
