"""LangFoundry: from a language community's raw material to an evaluated LoRA adapter."""

__version__ = "0.1.0"
