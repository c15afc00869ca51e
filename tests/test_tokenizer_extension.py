"""Vocabulary extension end to end on the tiny scratch model: extend, train, merge, save, reload, generate."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from repo_copy import TINY_PARAMS, copy_repo, override_params, run
from safetensors.torch import load_file
from tiny_models import build_tiny_base, write_examples
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from langfoundry.core.config import ExtendParams, LoraParams, TrainParams
from langfoundry.core.errors import UserError
from langfoundry.core.storage import read_jsonl
from langfoundry.model.scoring import target_language_texts
from langfoundry.model.tokenizer_analysis import analyse_base
from langfoundry.model.training import train_adapter
from langfoundry.model.vocab_extension import (
    EXTENSION_FILE,
    ORIGINAL_TOKENIZER_DIR,
    NewToken,
    add_embedding_rows,
    bpe_model,
    expose_output_bias,
    extend_base,
    merge_adapter,
    plan_new_tokens,
    trainable_token_indices,
    vocabulary_sizes,
)

EXTEND = ExtendParams(enabled=True, num_new_tokens=6, min_frequency=2)
TRAIN = TrainParams(
    lora=LoraParams(r=4, alpha=8, dropout=0.0), learning_rate=0.05, epochs=1, max_steps=6, batch_size=4,
    gradient_accumulation=1, max_length=64, eval_steps=3, early_stopping_patience=0, warmup_ratio=0.0,
)
ORIGINAL_VOCAB = 300  # tiny_models.TINY_SCRATCH.vocab_size


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("extension")
    write_examples(root)
    build_tiny_base(root / "original", root / "train.jsonl")
    shutil.copytree(root / "original", root / "base")
    metrics = extend_base(root / "base", root / "train.jsonl", EXTEND)
    return root, metrics


@pytest.fixture(scope="module")
def trained(extended) -> Path:
    root, _ = extended
    train_adapter(TRAIN, 13, root / "base", root / "train.jsonl", root / "val.jsonl", out_dir=root / "adapter",
                  live_dir=root / "live", checkpoint_dir=root / "checkpoints")
    return root


@pytest.fixture(scope="module")
def merged(trained) -> tuple[Path, dict]:
    _, _, sizes = merge_adapter(trained / "base", trained / "adapter", trained / "merged")
    return trained, sizes


def new_ids(root: Path) -> list[int]:
    return [token["id"] for token in json.loads((root / "base" / EXTENSION_FILE).read_text())["new_tokens"]]


def trained_rows(root: Path) -> torch.Tensor:
    weights = load_file(root / "adapter" / "adapter_model.safetensors")
    (delta,) = [tensor for name, tensor in weights.items() if name.endswith("trainable_tokens_delta")]
    return delta


def disk_sizes(directory: Path) -> dict[str, int]:
    model = AutoModelForCausalLM.from_pretrained(directory)
    sizes = vocabulary_sizes(model, AutoTokenizer.from_pretrained(directory))
    sizes["config.json"] = json.loads((directory / "config.json").read_text())["vocab_size"]
    return sizes


def test_extension_adds_the_asked_tokens_as_ordinary_vocabulary(extended) -> None:
    root, metrics = extended
    original = AutoTokenizer.from_pretrained(root / "original")
    tokenizer = AutoTokenizer.from_pretrained(root / "base")
    record = json.loads((root / "base" / EXTENSION_FILE).read_text())
    assert len(tokenizer) == ORIGINAL_VOCAB + EXTEND.num_new_tokens == metrics["vocab_size"] == record["vocab_size"]
    assert new_ids(root) == list(range(ORIGINAL_VOCAB, ORIGINAL_VOCAB + EXTEND.num_new_tokens))
    assert not set(new_ids(root)) & set(tokenizer.added_tokens_decoder), "vocabulary entries, not added tokens"
    assert AutoTokenizer.from_pretrained(root / "base" / ORIGINAL_TOKENIZER_DIR).get_vocab() == original.get_vocab()

    pieces = {token["id"]: token["pieces"] for token in record["new_tokens"]}
    texts = [text for _, text in target_language_texts(read_jsonl(root / "train.jsonl"))]
    used = set()
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        used |= set(ids) & set(pieces)
        expanded = [piece for token_id in ids for piece in pieces.get(token_id, [token_id])]
        assert expanded == original(text, add_special_tokens=False)["input_ids"], "new tokens only join old pieces"
    assert used == set(pieces), "every new token occurs in the training text"
    assert metrics["extension"]["training_tokens_after"] < metrics["extension"]["training_tokens_before"]


def test_new_rows_start_as_the_mean_of_the_rows_they_replace(extended) -> None:
    root, _ = extended
    original = AutoModelForCausalLM.from_pretrained(root / "original").get_input_embeddings().weight
    model = AutoModelForCausalLM.from_pretrained(root / "base")
    weight = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr(), "the scratch model ties them"
    assert torch.equal(weight[:ORIGINAL_VOCAB], original)
    for token in json.loads((root / "base" / EXTENSION_FILE).read_text())["new_tokens"]:
        assert torch.allclose(weight[token["id"]], original[token["pieces"]].mean(dim=0), atol=1e-7)


def test_vocabulary_sizes_agree_at_every_step(merged) -> None:
    root, merged_sizes = merged
    size = ORIGINAL_VOCAB + EXTEND.num_new_tokens
    assert set(disk_sizes(root / "base").values()) == {size}
    adapter_config = json.loads((root / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["trainable_token_indices"] == new_ids(root)
    assert len(AutoTokenizer.from_pretrained(root / "adapter")) == size
    assert trained_rows(root).shape[0] == EXTEND.num_new_tokens
    assert set(merged_sizes.values()) == {size}
    assert set(disk_sizes(root / "merged").values()) == {size}


def test_merged_model_holds_the_trained_rows(merged) -> None:
    root, _ = merged
    ids = new_ids(root)
    initial = AutoModelForCausalLM.from_pretrained(root / "base").get_input_embeddings().weight[ids]
    trained = trained_rows(root)
    assert not torch.allclose(trained, initial), "training moved the new rows away from their initial mean"
    reloaded = AutoModelForCausalLM.from_pretrained(root / "merged")
    assert torch.equal(reloaded.get_input_embeddings().weight[ids], trained)
    assert torch.equal(reloaded.get_output_embeddings().weight[ids], trained), "the tied output layer too"


def test_reloaded_merged_model_generates_as_the_adapter_does(merged) -> None:
    from peft import PeftModel

    root, _ = merged
    tokenizer = AutoTokenizer.from_pretrained(root / "merged")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\nabot"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert set(prompt["input_ids"][0].tolist()) & set(new_ids(root)), "the prompt uses a new token"
    reloaded = AutoModelForCausalLM.from_pretrained(root / "merged").eval()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(root / "base"), root / "adapter").eval()
    with torch.no_grad():
        logits = reloaded(**prompt).logits
        assert logits.shape[-1] == len(tokenizer)
        assert torch.allclose(logits, adapted(**prompt).logits, atol=1e-5)
        generated = reloaded.generate(**prompt, max_new_tokens=5, do_sample=False)
        assert torch.equal(generated, adapted.generate(**prompt, max_new_tokens=5, do_sample=False))
    assert generated.shape[1] > prompt["input_ids"].shape[1] and int(generated.max()) < len(tokenizer)


def test_tokenizer_analysis_shows_before_and_after(extended) -> None:
    root, _ = extended
    examples = {"train": read_jsonl(root / "train.jsonl"), "val": read_jsonl(root / "val.jsonl")}
    analysis = analyse_base(root / "base", examples)
    assert analysis.before is not None and analysis.heldout_fertility is not None
    target = "jv-x-banyumas"
    assert analysis.figures[target].fertility < analysis.before[target].fertility
    metrics = analysis.metrics()
    assert metrics["extension"]["new_tokens"] == EXTEND.num_new_tokens
    before = metrics["languages"][target]["before_extension"]
    assert before["fertility"] == analysis.before[target].fertility and math.isfinite(before["heldout_fertility"])


def test_extension_is_deterministic(extended, tmp_path) -> None:
    root, _ = extended
    shutil.copytree(root / "original", tmp_path / "base")
    extend_base(tmp_path / "base", root / "train.jsonl", EXTEND)
    for name in ("tokenizer.json", EXTENSION_FILE, "model.safetensors", "config.json"):
        assert (tmp_path / "base" / name).read_bytes() == (root / "base" / name).read_bytes(), name


def test_untied_output_layer_gets_its_own_rows_and_trainable_tokens() -> None:
    from peft import LoraConfig, get_peft_model

    config = LlamaConfig(vocab_size=20, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    inputs, outputs = model.get_input_embeddings().weight.clone(), model.get_output_embeddings().weight.clone()
    add_embedding_rows(model, [NewToken(id=20, token="xy", text="xy", merge=("x", "y"), pieces=(3, 4))], 21)
    assert vocabulary_sizes(model, list(range(21))) == {"tokenizer": 21, "input_embeddings": 21, "output_layer": 21,
                                                         "config": 21}
    assert torch.allclose(model.get_input_embeddings().weight[20], inputs[[3, 4]].mean(dim=0))
    assert torch.allclose(model.get_output_embeddings().weight[20], outputs[[3, 4]].mean(dim=0))

    indices = trainable_token_indices(model, [20])
    assert indices == {"embed_tokens": [20], "lm_head": [20]}
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], trainable_token_indices=indices))
    expose_output_bias(peft_model)
    head = peft_model.get_output_embeddings()
    assert head.bias is None and head.weight.shape == (21, 8)  # what TRL's fused LM head reads
    assert "bias" not in "".join(peft_model.state_dict())


def test_new_tokens_may_build_on_new_tokens_and_reuse_unreachable_ones() -> None:
    vocab = {token: index for index, token in enumerate(["a", "b", "c", "x", "xx"])}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab=vocab, merges=[])))
    merges = [("a", "b"), ("x", "x"), ("ab", "c"), ("c", "c")]
    kept, new = plan_new_tokens(tokenizer, merges, limit=2)
    assert kept == [("a", "b"), ("x", "x"), ("ab", "c")], "xx exists already: its merge adds no token"
    assert [(token.id, token.token, token.pieces) for token in new] == [(5, "ab", (0, 1)), (6, "abc", (0, 1, 2))]


def test_a_tokenizer_that_is_not_bpe_is_a_user_error() -> None:
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "abot": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(UserError, match="supports BPE tokenizers; this one is WordLevel"):
        bpe_model(PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]"))


@pytest.mark.slow
def test_pipeline_with_extension_trains_and_evaluates_the_new_tokens(tmp_path) -> None:
    repo = copy_repo(tmp_path / "repo")
    override_params(repo, {**TINY_PARAMS, "tokenizer.extend.enabled": True, "tokenizer.extend.num_new_tokens": 32})
    run(["git", "commit", "-qam", "extend the vocabulary"], repo)
    run(["dvc", "repro", "evaluate", "tokenizer"], repo)
    base = json.loads((repo / "metrics/base.json").read_text())
    assert base["extension.new_tokens"] > 0 and base["vocab_size"] == base["extension.original_vocab_size"] + base[
        "extension.new_tokens"]
    tokenizer = json.loads((repo / "metrics/tokenizer.json").read_text())
    lang = "languages.jv-x-banyumas"
    assert tokenizer[f"{lang}.fertility"] <= tokenizer[f"{lang}.before_extension.fertility"]
    assert "## Vocabulary extension" in (repo / "reports/tokenizer.md").read_text()
    adapter_config = json.loads((repo / "models/adapter/adapter_config.json").read_text())
    assert len(adapter_config["trainable_token_indices"]) == base["extension.new_tokens"]
    evaluation = json.loads((repo / "metrics/eval.json").read_text())
    assert math.isfinite(evaluation["adapter.chrf"]) and math.isfinite(evaluation["adapter.perplexity"])
