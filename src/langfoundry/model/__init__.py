"""Base model, vocabulary extension, presets, LoRA training, evaluation, scoring, tokenizer analysis."""
