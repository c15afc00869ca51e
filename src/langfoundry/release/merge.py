"""Merge the LoRA adapter into its base: one plain Hugging Face model that loads without peft.

The merged folder holds safetensors weights, config.json, generation_config.json and the tokenizer with its
chat template, so `AutoModelForCausalLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`
are all a user (or the GGUF export) needs. The merge is checked, not trusted: the saved model is loaded back
on its own and its logits must equal those of the base with the adapter attached.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.errors import UserError
from langfoundry.model.evaluation import attach_adapter, chat_prompts, load_tokenizer
from langfoundry.model.vocab_extension import check_vocabulary

# float32 logits of a merged and an unmerged LoRA differ by rounding only: W + BA summed once versus per call
LOGIT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class MergeResult:
    model: object  # the merged model, loaded back from out_dir (a PreTrainedModel)
    tokenizer: object
    max_logit_difference: float  # between base+adapter and the merged model, over the check prompts
    parameters: int


def prompt_logits(model, tokenizer, prompts: Sequence[str]):
    """Next-token logits at every position of each prompt (float32, one prompt at a time: no padding to mask)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        return [model(input_ids=torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]], device=device))
                .logits[0].float().cpu() for prompt in prompts]


def max_difference(first, second) -> float:
    return max((float((a - b).abs().max()) for a, b in zip(first, second)), default=0.0)


def load_merged(folder: str | Path):
    """The merged model and tokenizer as any user loads them: transformers alone, float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path,
                  check_examples: Sequence[Mapping[str, Any]]) -> MergeResult:
    """Merge adapter_dir into base_dir, save to out_dir (replaced), reload it and compare logits on the prompts of
    check_examples (chat examples: their messages up to the answer, in the chat template)."""
    import torch
    from transformers import AutoModelForCausalLM

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    for path, stage in ((base_dir, "base"), (adapter_dir, "train")):
        if not path.exists():
            raise UserError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})")
    # the adapter's tokenizer when training saved one (it may hold new tokens), else the base's
    tokenizer = load_tokenizer(adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, use_safetensors=True).eval()
    with_adapter = attach_adapter(base, adapter_dir)
    check_prompts = chat_prompts(tokenizer, check_examples)
    expected = prompt_logits(with_adapter, tokenizer, check_prompts)

    merged = with_adapter.merge_and_unload()
    check_vocabulary(merged, tokenizer, f"{adapter_dir} merged into {base_dir}")
    if out_dir.exists():
        shutil.rmtree(out_dir)  # no stale shard or file of an earlier export may survive
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del with_adapter, merged, base

    model, saved_tokenizer = load_merged(out_dir)
    difference = max_difference(expected, prompt_logits(model, saved_tokenizer, check_prompts))
    if not difference <= LOGIT_TOLERANCE:
        raise UserError(f"{out_dir}: the merged model's logits differ from {base_dir} with {adapter_dir} by {difference:.2e} "
                        f"(tolerance {LOGIT_TOLERANCE:.0e}); this adapter type does not merge exactly: serve base and adapter")
    return MergeResult(model=model, tokenizer=saved_tokenizer, max_logit_difference=difference,
                       parameters=sum(parameter.numel() for parameter in model.parameters()))
