"""Evaluate the base model and its LoRA adapter on the test set, beside a dictionary baseline.

Both models answer every test prompt with greedy decoding (batched, left-padded) and, with
evaluate.dictionary_context, again with the train split's dictionary entries in the translation
prompts (model.dictionary_context): the main scores are then those with context, `<model>.no_context.*`
those without;
answers are scored with sacrebleu (see scoring.py), and each model's perplexity is
measured on the test set's target-language text. Outputs: flat metrics, one
prediction line per example and model, and a markdown report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.config import EvaluateParams, PathsParams
from langfoundry.core.errors import UserError
from langfoundry.core.inventory import load_inventory, region_keys
from langfoundry.core.storage import read_jsonl, write_jsonl, write_metrics
from langfoundry.model.determinism import pin_threads
from langfoundry.model.dictionary_context import add_context
from langfoundry.model.progress import Progress
from langfoundry.model.scoring import (
    DictionaryBaseline,
    Scorer,
    direction,
    score_predictions,
    select_examples,
    target_language_texts,
)

MODELS = ("base", "adapter")


@dataclass(frozen=True)
class EvalPaths:
    test: Path
    train: Path
    base: Path
    adapter: Path
    metrics: Path
    predictions: Path
    report: Path
    inventory: Path  # regions of the languages, for per-region scores
    dictionary: Path | None = None  # the vocabulary index (dictionary stage), read when evaluate.dictionary_context is on

    @classmethod
    def from_params(cls, paths: PathsParams) -> EvalPaths:
        return cls(test=paths.split_file("test"), train=paths.split_file("train"), base=paths.base,
                   adapter=paths.adapter, metrics=paths.metric("eval"), predictions=paths.reports / "predictions.jsonl",
                   report=paths.reports / "eval.md", inventory=paths.inventory,
                   dictionary=paths.dictionary)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise UserError(f"{path}: the tokenizer has no chat_template; save the model's tokenizer with one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out, so any known token will do
    if tokenizer.pad_token is None:
        raise UserError(f"{path}: the tokenizer has neither a pad nor an eos token; set one when saving it")
    return tokenizer


def load_base(path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    device = _device()
    # float32 on CPU: bfloat16 matmuls there are slow and make greedy outputs drift between runs.
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if device == "cuda" else torch.float32,
                                                 use_safetensors=True)
    return model.to(device).eval()


def attach_adapter(model, path: Path):
    # peft falls back to a pickled adapter_model.bin when there is no safetensors file; refuse that
    if not (Path(path) / "adapter_model.safetensors").exists():
        raise UserError(f"{path}: no adapter_model.safetensors; only safetensors weights are loaded "
                        f"(rerun the train stage: dvc repro train)")
    from peft import PeftModel

    return PeftModel.from_pretrained(model, path).eval()


def chat_prompts(tokenizer, examples: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each example's conversation up to the answer, in the model's own chat template."""
    return [tokenizer.apply_chat_template(example["messages"][:-1], add_generation_prompt=True, tokenize=False)
            for example in examples]


class _Examples:
    """Progress over examples: one tqdm bar on a terminal, a line every tenth or so in a log (model.progress)."""

    def __init__(self, total: int, desc: str) -> None:
        self.progress = Progress(desc, total, unit="example")
        self.done, self.every = 0, max(1, total // 10)
        self.next_line = self.every

    def update(self, count: int) -> None:
        self.done += count
        if self.progress.bar is not None:
            self.progress.update(self.done)
        elif self.done >= self.next_line or self.done >= self.progress.total:  # batches step past exact multiples
            self.progress.note(self.progress.line(self.done, None, None, final=self.done >= self.progress.total))
            self.next_line = self.done + self.every

    def __enter__(self) -> _Examples:
        return self

    def __exit__(self, *exc) -> None:
        self.progress.close()


def _progress(total: int, desc: str) -> _Examples:
    return _Examples(total, desc)


def _stop_tokens(model, tokenizer) -> list[int]:
    """The tokenizer's eos plus whatever the model's generation config ends a turn with."""
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return sorted({token for token in [tokenizer.eos_token_id, *configured] if token is not None})


def generate(model, tokenizer, prompts: Sequence[str], batch_size: int, max_new_tokens: int, desc: str = "generate") -> list[str]:
    """Greedy continuations, batched over prompts of similar length (left-padded), in input order."""
    import torch
    from transformers import GenerationConfig

    encoded = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=_stop_tokens(model, tokenizer))
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    device = next(model.parameters()).device
    outputs: list[str] = [""] * len(prompts)
    with _progress(len(prompts), desc) as bar, torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch_ids = order[start:start + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in batch_ids]}, padding=True, return_tensors="pt").to(device)
            generated = model.generate(**batch, generation_config=config)
            continuations = generated[:, batch["input_ids"].shape[1]:]
            for index, text in zip(batch_ids, tokenizer.batch_decode(continuations, skip_special_tokens=True)):
                outputs[index] = text.strip()
            bar.update(len(batch_ids))
    return outputs


def token_nll(model, tokenizer, texts: Sequence[str], batch_size: int, desc: str = "perplexity") -> list[tuple[float, int]]:
    """(summed negative log-likelihood, predicted tokens) per text, each text read after a start token."""
    import torch

    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [[start] + tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    order = sorted(range(len(texts)), key=lambda i: (len(encoded[i]), i))
    device = next(model.parameters()).device
    results: list[tuple[float, int]] = [(0.0, 0)] * len(texts)
    with _progress(len(texts), desc) as bar, torch.inference_mode():
        for begin in range(0, len(order), batch_size):
            batch_ids = order[begin:begin + batch_size]
            width = max(len(encoded[i]) for i in batch_ids)
            ids = torch.full((len(batch_ids), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
            for row, index in enumerate(batch_ids):
                ids[row, :len(encoded[index])] = torch.tensor(encoded[index])
                mask[row, :len(encoded[index])] = 1
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            targets, target_mask = ids[:, 1:], mask[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * target_mask
            for row, index in enumerate(batch_ids):
                results[index] = (float(nll[row].sum()), int(target_mask[row].sum()))
            bar.update(len(batch_ids))
    return results


def perplexities(texts: Sequence[tuple[str, str]], nll: Sequence[tuple[float, int]],
                 regions: Mapping[str, str] | None = None) -> dict[str, float]:
    """exp(mean token NLL), overall, per language and (given regions: tag -> region key) per region."""
    totals: dict[str, list[float]] = {}
    for (lang, _), (loss, count) in zip(texts, nll):
        keys = ["perplexity", f"lang.{lang}.perplexity"]
        if regions is not None:
            keys.append(f"region.{regions.get(lang, 'none')}.perplexity")
        for key in keys:
            total = totals.setdefault(key, [0.0, 0])
            total[0] += loss
            total[1] += count
    # exp overflows past ~709 nats per token; no real model is that far off, a broken one gets a huge finite value.
    return {key: math.exp(min(loss / count, 700.0)) for key, (loss, count) in totals.items() if count}


def evaluate_model(model, tokenizer, examples, texts, params: EvaluateParams, name: str):
    """(hypotheses, per-text NLL) for one model."""
    prompts = chat_prompts(tokenizer, examples)
    hypotheses = generate(model, tokenizer, prompts, params.batch_size, params.max_new_tokens, desc=f"{name}: generate")
    nll = token_nll(model, tokenizer, [text for _, text in texts], params.batch_size, desc=f"{name}: perplexity")
    return hypotheses, nll


def context_hypotheses(model, tokenizer, plain: Sequence[str], examples, with_context, params: EvaluateParams,
                       name: str) -> list[str]:
    """Answers to the prompts with dictionary context; a prompt that got no entries keeps its plain answer."""
    changed = [index for index, (example, extended) in enumerate(zip(examples, with_context)) if extended is not example]
    answers = generate(model, tokenizer, chat_prompts(tokenizer, [with_context[index] for index in changed]),
                       params.batch_size, params.max_new_tokens, desc=f"{name}: generate with dictionary")
    out = list(plain)
    for index, answer in zip(changed, answers):
        out[index] = answer
    return out


def run_evaluation(params: EvaluateParams, seed: int, paths: EvalPaths) -> dict[str, Any]:
    """Score base, adapter and the dictionary baseline; write metrics, predictions and the report."""
    import torch

    from langfoundry.reports.eval_report import render_report

    for path, stage in ((paths.test, "format"), (paths.train, "format"), (paths.base, "base"), (paths.adapter, "train")):
        if not path.exists():
            raise UserError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})")
    scorer = Scorer(params.bleu_tokenize)
    examples = select_examples(read_jsonl(paths.test), params.max_examples, seed)
    if not examples:
        raise UserError(f"{paths.test}: no test examples; check the split fractions and format.task_weights")
    texts = target_language_texts(examples)
    regions = region_keys(load_inventory(paths.inventory))
    torch.manual_seed(seed)
    pin_threads()  # the thread count the other model stages use: same reductions on every machine

    hypotheses: dict[str, list[str]] = {}
    metrics: dict[str, Any] = {"n_examples": len(examples), "n_perplexity_texts": len(texts)}
    with_context = None
    if params.dictionary_context:
        if paths.dictionary is None:
            raise UserError("evaluate.dictionary_context is on but no dictionary index was given; set paths.dictionary")
        with_context, counts = add_context(examples, paths.dictionary, params)
        metrics.update(counts)
    model = load_base(paths.base)
    for name in MODELS:
        if name == "adapter":
            model = attach_adapter(model, paths.adapter)
        tokenizer = load_tokenizer(paths.adapter if name == "adapter" and (paths.adapter / "tokenizer_config.json").exists()
                                   else paths.base)
        hypotheses[name], nll = evaluate_model(model, tokenizer, examples, texts, params, name)
        if with_context is not None:
            hypotheses[f"{name}.no_context"] = hypotheses[name]
            hypotheses[name] = context_hypotheses(model, tokenizer, hypotheses[name], examples, with_context, params, name)
            plain = score_predictions(examples, hypotheses[f"{name}.no_context"], scorer, regions)
            metrics.update({f"{name}.no_context.{key}": value for key, value in plain.items()})
        scores = score_predictions(examples, hypotheses[name], scorer, regions)
        scores.update(perplexities(texts, nll, regions))
        metrics.update({f"{name}.{key}": value for key, value in scores.items()})
    del model

    translations = [example for example in examples if direction(example)]
    baseline = DictionaryBaseline(read_jsonl(paths.train))
    hypotheses["baseline"] = [baseline.predict(example) for example in translations]
    scores = score_predictions(translations, hypotheses["baseline"], scorer, regions)
    metrics.update({f"baseline.{key}": value for key, value in scores.items()})

    for key in [key for key in metrics if key.startswith("base.")]:
        adapter_key = "adapter." + key.removeprefix("base.")
        if adapter_key in metrics:
            metrics["delta." + key.removeprefix("base.")] = metrics[adapter_key] - metrics[key]
    for task in sorted({example["task"] for example in examples}):
        metrics[f"n.{task}"] = sum(example["task"] == task for example in examples)
    metrics.update({f"signature.{name}": signature for name, signature in scorer.signatures().items()})

    write_jsonl(prediction_rows(examples, translations, hypotheses), paths.predictions)
    flat = write_metrics(paths.metrics, metrics)
    paths.report.parent.mkdir(parents=True, exist_ok=True)
    paths.report.write_text(render_report(flat, examples, hypotheses, translations, params.report_samples), encoding="utf-8")
    return flat


def prediction_rows(examples, translations, hypotheses: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    subsets = [("base", examples), ("adapter", examples), ("baseline", translations)]
    subsets += [(f"{name}.no_context", examples) for name in MODELS if f"{name}.no_context" in hypotheses]
    for name, subset in subsets:
        for example, hypothesis in zip(subset, hypotheses[name]):
            rows.append({"id": example["id"], "model": name, "task": example["task"], "lang": example["lang"],
                         "source": example["source_text"], "reference": example["reference"], "hypothesis": hypothesis})
    return sorted(rows, key=lambda row: (row["id"], row["model"]))
