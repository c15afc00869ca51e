"""Base model, vocabulary extension, presets, LoRA training, evaluation, scoring, tokenizer analysis."""

from langfoundry.model.determinism import pin_cpu_kernels

pin_cpu_kernels()  # before any model code runs torch: the same kernels, so the same bytes, on every x86-64 CPU
