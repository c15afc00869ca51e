"""The merged model's Hugging Face model card (README.md): YAML front matter, then what the model is and is not.

Everything in it is read from the pipeline's own records: parameters, metrics/train.json (data version and the
training settings in force), metrics/eval.json (base against adapter), metrics/release.json (the release
decision), sources.yaml (languages and licences) and the export's own read-back figures. A record that is
missing is said to be missing, never filled in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from langfoundry.core.config import BaseParams, Source

# (label, flat key in metrics/eval.json without the model prefix); perplexity is the one where lower is better
EVAL_ROWS = [
    ("chrF, all tasks", "chrf"),
    ("chrF++, all tasks", "chrf_pp"),
    ("BLEU, all tasks", "bleu"),
    ("chrF, translation", "translation.chrf"),
    ("exact match, vocabulary", "vocabulary.exact_match"),
    ("perplexity, target-language text (lower is better)", "perplexity"),
]
TRAINING_KEYS = ["preset", "learning_rate", "epochs_planned", "epochs", "batch_size", "gradient_accumulation", "max_length",
                 "quantization", "bf16"]


@dataclass(frozen=True)
class CardInputs:
    model_name: str
    base: BaseParams
    sources: Sequence[Source]
    model_facts: Mapping[str, Any]  # architecture, parameters, hidden_size, layers, vocab_size of the merged model
    adapter_config: Mapping[str, Any] | None = None  # the adapter's adapter_config.json
    train: Mapping[str, Any] | None = None  # metrics/train.json (flat)
    evaluation: Mapping[str, Any] | None = None  # metrics/eval.json (flat)
    release: Mapping[str, Any] | None = None  # metrics/release.json (contract: decision, criteria, failed)
    gguf: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # file type -> file, bytes, agreement, chrf_delta
    license: str | None = None  # export.license; None: from the sources


def read_json(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def used_sources(sources: Sequence[Source]) -> list[Source]:
    return [source for source in sources if not source.planned]  # a planned source has no rows in the data yet


def language_tags(sources: Sequence[Source]) -> list[str]:
    """The BCP 47 tags of the data, record languages first, each once."""
    tags = [source.lang for source in sources] + [source.pivot_lang for source in sources if source.pivot_lang]
    return list(dict.fromkeys(tags))


def card_license(sources: Sequence[Source], override: str | None) -> str:
    """The hub's licence identifier: the override, the sources' one shared licence, or "other" (listed in the card)."""
    if override:
        return override.lower()
    licences = {source.license for source in sources}
    return next(iter(licences)).lower() if len(licences) == 1 and None not in licences else "other"


def front_matter(inputs: CardInputs) -> dict[str, Any]:
    sources = used_sources(inputs.sources)
    tags = language_tags(sources)
    meta: dict[str, Any] = {
        # the hub wants ISO 639 codes: the primary subtag of each tag (jv-x-banyumas is a variety of Javanese, jv)
        "language": list(dict.fromkeys(tag.split("-")[0] for tag in tags)),
        "license": card_license(sources, inputs.license),
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["langfoundry", "lora", "merged", "gguf", "translation", "low-resource-languages"],
    }
    if meta["license"] == "other":
        meta["license_name"] = "see-sources"
    if inputs.base.model != "scratch" and not inputs.base.model.startswith((".", "/", "~")):
        meta["base_model"] = inputs.base.model  # only a hub id means something to the hub; scratch has none
    return meta


def number(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def base_section(inputs: CardInputs) -> list[str]:
    facts = inputs.model_facts
    shape = (f"{facts.get('architecture')} architecture, {number(facts.get('parameters'))} parameters, "
             f"{facts.get('layers')} layers of width {facts.get('hidden_size')}, vocabulary {number(facts.get('vocab_size'))}")
    if inputs.base.model == "scratch":
        origin = ("Trained from scratch by the pipeline's `base` stage on the training split itself (a byte-level BPE "
                  "tokenizer and a small Llama-style model); no pretrained model is involved, so there is no revision.")
    else:
        origin = f"`{inputs.base.model}` at revision `{inputs.base.revision or 'unpinned (a local folder)'}`."
    return ["## Base model", "", origin, "", f"Merged model: {shape}.", ""]


def data_section(inputs: CardInputs) -> list[str]:
    lines = ["## Data", ""]
    train = inputs.train or {}
    if "data_version.clean_sha256" in train:
        lines += ["The adapter was trained on this version of the data (from metrics/train.json):", "",
                  "| what | value |", "|---|---|",
                  f"| clean table, rows | {number(train.get('data_version.clean_rows'))} |",
                  f"| clean table, sha256 | `{train['data_version.clean_sha256']}` |",
                  f"| training split, sha256 | `{train.get('data_version.train_sha256', '–')}` |",
                  f"| training / validation examples | {number(train.get('train_examples'))} / "
                  f"{number(train.get('val_examples'))} |", ""]
    else:
        lines += ["The data version is not recorded (metrics/train.json is missing or predates it).", ""]
    lines += ["Languages and sources:", "", "| source | kind | language | pivot | licence |", "|---|---|---|---|---|"]
    for source in used_sources(inputs.sources):
        lines.append(f"| {source.id} | {source.kind} | {source.lang} | {source.pivot_lang or '–'} | "
                     f"{source.license or 'not stated'} |")
    return [*lines, ""]


def parameters_section(inputs: CardInputs) -> list[str]:
    lines = ["## Parameters", ""]
    adapter = inputs.adapter_config or {}
    if adapter:
        targets = ", ".join(sorted(adapter.get("target_modules") or []))
        lines += [f"LoRA: r = {adapter.get('r')}, alpha = {adapter.get('lora_alpha')}, dropout = {adapter.get('lora_dropout')}, "
                  f"target modules: {targets}; merged into the base weights (no peft needed to load the model).", ""]
    train = inputs.train or {}
    rows = [(key, train[f"effective.{key}"]) for key in TRAINING_KEYS if f"effective.{key}" in train]
    rows += [(key, train[key]) for key in ("steps", "best_step", "stopped_early", "val_loss_best") if key in train]
    if rows:
        lines += ["Training settings in force (metrics/train.json):", "", "| setting | value |", "|---|---|"]
        lines += [f"| {key} | {f'{value:g}' if isinstance(value, float) else value} |" for key, value in rows]
    else:
        lines.append("The training settings are not recorded (metrics/train.json is missing).")
    return [*lines, ""]


def evaluation_section(evaluation: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Evaluation", ""]
    if not evaluation:
        return [*lines, "Not evaluated (metrics/eval.json is missing).", ""]
    lines += [f"On the held-out test set ({number(evaluation.get('n_examples'))} examples; every test word is one the "
              "model never saw in training). Baseline: word-for-word dictionary lookup learnt from the training split.", "",
              "| metric | base | adapter (this model) | delta | baseline |", "|---|---|---|---|---|"]
    for label, key in EVAL_ROWS:
        if f"base.{key}" in evaluation or f"adapter.{key}" in evaluation:
            base, adapter = evaluation.get(f"base.{key}"), evaluation.get(f"adapter.{key}")
            # the baseline only translates, so it has a score on translation rows alone
            baseline = evaluation.get(f"baseline.{key}") if key.startswith("translation.") else None
            delta = adapter - base if isinstance(base, float | int) and isinstance(adapter, float | int) else None
            signed = "–" if delta is None else f"{delta:+,.2f}"
            lines.append(f"| {label} | {number(base)} | {number(adapter)} | {signed} | {number(baseline)} |")
    return [*lines, ""]


def release_section(release: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Release decision", ""]
    if not release:
        return [*lines, "No release decision: metrics/release.json was not found (run the release stage: dvc repro release).", ""]
    decision = str(release.get("decision", "unknown"))
    failed = release.get("failed") or []
    lines += [f"**{decision.upper()}**: {release.get('candidate', 'adapter')} against {release.get('reference', 'base')}"
              + (f"; failed: {', '.join(failed)}." if failed else "."), "",
              "| criterion | metric | threshold | value | status | detail |", "|---|---|---|---|---|---|"]
    for criterion in release.get("criteria") or []:
        lines.append(f"| {criterion.get('name')} | {criterion.get('metric', '–')} | {number(criterion.get('threshold'), 3)} | "
                     f"{number(criterion.get('value'), 3)} | {criterion.get('status')} | {criterion.get('detail', '')} |")
    return [*lines, ""]


def files_section(gguf: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["## Files", "", "This folder: the merged model in Hugging Face format (safetensors, config, generation config, "
             "tokenizer with its chat template)."]
    if gguf:
        lines += ["", "GGUF files for llama.cpp and Ollama (models/gguf/), read back independently by transformers' GGUF "
                  "loader and compared with this model's greedy answers on the test prompts:", "",
                  "| file | bytes | identical answers | chrF delta |", "|---|---|---|---|"]
        for file_type, facts in gguf.items():
            lines.append(f"| {facts.get('file', file_type)} | {number(facts.get('bytes'))} | "
                         f"{number(100 * facts.get('agreement', 0.0), 1)}% | {facts.get('chrf_delta', 0.0):+.2f} |")
        lines += ["", "`llama-cli -m model-q8_0.gguf -cnv` uses the chat template stored in the file; for Ollama, a "
                  "Modelfile with `FROM ./model-q8_0.gguf`."]
    return [*lines, ""]


def limits_section(inputs: CardInputs) -> list[str]:
    evaluation = inputs.evaluation or {}
    lines = ["## Intended use and limits", ""]
    if inputs.base.model == "scratch":
        parameters = number(inputs.model_facts.get("parameters"))
        lines.append(f"A demonstration of the pipeline, not a translator. This is a model of {parameters} parameters "
                     "trained from nothing but a word list of a few thousand entries: it has never seen "
                     "running text, knows no word outside its training split and produces plausible-looking words "
                     "rather than translations.")
        model, baseline = evaluation.get("adapter.translation.chrf"), evaluation.get("baseline.translation.chrf")
        if isinstance(model, float) and isinstance(baseline, float):
            lines.append(f"On unseen words its translation chrF is {model:.2f}, against {baseline:.2f} for a word-for-word "
                         "dictionary lookup.")
        lines.append("Use it to test the loop (data, training, evaluation, release, serving), never for real text.")
    else:
        lines.append("A fine-tune for translation and vocabulary questions between the languages above. Quality is "
                     "bounded by a small, single-domain corpus: check the evaluation table, and have a speaker review "
                     "its output before it is used for anything that matters.")
    lines += ["", "Outputs are not filtered for harmful content. Personal data (e-mail addresses, phone numbers, ID "
              "numbers) was scrubbed from the training data, which does not rule out other personal details.", ""]
    return lines


def render_model_card(inputs: CardInputs) -> str:
    header = "---\n" + yaml.safe_dump(front_matter(inputs), sort_keys=False, allow_unicode=True) + "---\n\n"
    tags = ", ".join(f"`{tag}`" for tag in language_tags(used_sources(inputs.sources)))
    body = [f"# {inputs.model_name}", "",
            f"A causal language model for {tags}: a LoRA adapter merged into its base model by the LangFoundry pipeline "
            "(`dvc repro export`).", "",
            *base_section(inputs), *data_section(inputs), *parameters_section(inputs),
            *evaluation_section(inputs.evaluation), *release_section(inputs.release), *files_section(inputs.gguf),
            *limits_section(inputs)]
    return header + "\n".join(body).rstrip("\n") + "\n"
