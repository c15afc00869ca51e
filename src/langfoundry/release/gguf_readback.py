"""Each GGUF file read back by an independent reader, and its greedy answers compared with the merged model's.

The reader is transformers' own GGUF loading (`from_pretrained(folder, gguf_file=name)` for the model and
for the tokenizer): it undoes llama.cpp's tensor names and the Llama query/key reordering by its own code
and rebuilds the tokenizer from the file's metadata alone, so a wrong name, permutation, token or template
in the export shows as disagreement here. On the test prompts it measures, per file:
- agreement: the share of prompts whose greedy answer is exactly the merged model's;
- prompt_agreement: the share of prompts the file's tokenizer and chat template turn into the same token ids;
- chrf and chrf_delta: chrF of the file's answers against the references, and its difference to the merged model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langfoundry.core.config import EvaluateParams
from langfoundry.model.evaluation import chat_prompts, generate
from langfoundry.model.scoring import Scorer

# Greedy answers that must match the merged model's: F16 rounds every weight once, Q8_0 more coarsely.
AGREEMENT_TARGETS = {"f16": 0.99, "q8_0": 0.95}


def _quiet_gguf_conversion() -> None:
    """transformers draws its GGUF conversion bar with tqdm itself, past its own progress-bar switch: in a log
    (not a terminal) turn that one bar off, as quiet_library_output does for the others."""
    import sys
    from functools import partial

    import transformers.modeling_gguf_pytorch_utils as gguf_loading
    from tqdm.auto import tqdm

    if not sys.stderr.isatty():
        gguf_loading.tqdm = partial(tqdm, disable=True)


def load_gguf(path: str | Path):
    """Model (float32 compute) and tokenizer rebuilt by transformers from the GGUF file alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    _quiet_gguf_conversion()
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out, so any known token will do
    return model, tokenizer


def share_equal(first: Sequence[Any], second: Sequence[Any]) -> float:
    pairs = list(zip(first, second))
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else 0.0


def prompt_ids(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    return [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]


def compare_gguf_files(merged_model, merged_tokenizer, gguf_files: Mapping[str, Path], examples: Sequence[Mapping[str, Any]],
                       params: EvaluateParams) -> dict[str, Any]:
    """Metrics of the merged model ("merged.chrf") and, per file type, of its GGUF file read back."""
    scorer = Scorer(params.bleu_tokenize)
    references = [example["reference"] for example in examples]
    prompts = chat_prompts(merged_tokenizer, examples)
    expected_ids = prompt_ids(merged_tokenizer, prompts)
    answers = generate(merged_model, merged_tokenizer, prompts, params.batch_size, params.max_new_tokens, desc="merged: generate")
    merged_chrf = scorer.score(answers, references)["chrf"]
    metrics: dict[str, Any] = {"n_prompts": len(examples), "merged": {"chrf": merged_chrf}}
    for file_type, path in gguf_files.items():
        model, tokenizer = load_gguf(path)
        own_prompts = chat_prompts(tokenizer, examples)  # the template and tokenizer the file carries
        own_answers = generate(model, tokenizer, own_prompts, params.batch_size, params.max_new_tokens,
                               desc=f"{file_type}: generate")
        chrf = scorer.score(own_answers, references)["chrf"]
        metrics[file_type] = {
            "agreement": share_equal(own_answers, answers),
            "agreement_target": AGREEMENT_TARGETS.get(file_type),
            "prompt_agreement": share_equal(prompt_ids(tokenizer, own_prompts), expected_ids),
            "chrf": chrf,
            "chrf_delta": chrf - merged_chrf,
        }
        del model
    return metrics
