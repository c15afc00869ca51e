"""The base stage's library: scratch tokenizer, chat template, scratch model, pretrained models by path or hub id."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_SCRATCH, build_tiny_base, write_examples
from transformers import AutoModelForCausalLM, AutoTokenizer

from langfoundry.core.config import BaseParams
from langfoundry.core.errors import UserError
from langfoundry.model.base import (
    END,
    SPECIAL_TOKENS,
    build_model,
    example_texts,
    pack_blocks,
    prepare_base,
    pretrain,
    pretraining_documents,
    read_examples,
    train_tokenizer,
)

UNSEEN = ["Ngapak ngomong café crème", "മലയാളം ഭാഷ", "ߒߞߏ ߞߊ߲", "漢字 and emoji 🙂", "  two  spaces\tand\ttabs\n"]


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_examples(directory)
    return directory


@pytest.fixture(scope="module")
def tokenizer(examples_dir):
    return train_tokenizer(example_texts(read_examples(examples_dir / "train.jsonl")), vocab_size=300)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, examples_dir) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("base") / "base"
    return directory, build_tiny_base(directory, examples_dir / "train.jsonl")


def test_tokenizer_round_trips_any_script(tokenizer) -> None:
    for text in UNSEEN + ["abot", "കടൽ", "ߞߊ߲"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
        assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


def test_tokenizer_learns_merges_from_the_text(tokenizer) -> None:
    # a word frequent in the training prompts needs fewer tokens than its bytes
    word = "Terjemahkan"
    assert len(tokenizer(word, add_special_tokens=False)["input_ids"]) < len(word.encode())
    assert len(tokenizer) <= 300


def test_special_tokens_are_single_and_set(tokenizer) -> None:
    for token in SPECIAL_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    assert tokenizer.eos_token == END
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.bos_token_id is not None


def test_chat_template_prompt_is_a_prefix_of_the_chat(tokenizer) -> None:
    chat = [{"role": "system", "content": "Jawab singkat."}, {"role": "user", "content": "abot?"},
            {"role": "assistant", "content": "berat"}]
    full = tokenizer.apply_chat_template(chat, tokenize=False)
    prompt = tokenizer.apply_chat_template(chat[:-1], tokenize=False, add_generation_prompt=True)
    without_generation = tokenizer.apply_chat_template(chat[:-1], tokenize=False)
    assert prompt.endswith("<|assistant|>\n") and not without_generation.endswith("<|assistant|>\n")
    assert full == prompt + "berat" + tokenizer.eos_token
    for message in chat:
        assert message["content"] in full
    full_ids = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]
    prompt_ids = tokenizer.apply_chat_template(chat[:-1], tokenize=True, add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    assert full_ids[-1] == tokenizer.eos_token_id


def test_chat_template_rejects_unknown_roles(tokenizer) -> None:
    with pytest.raises(Exception, match="roles must be"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_pretraining_documents_cover_every_answer(tokenizer, examples_dir) -> None:
    examples = read_examples(examples_dir / "train.jsonl")
    for corpus in ("chat", "text"):
        documents = "".join(pretraining_documents(examples, tokenizer, corpus))
        for example in examples:
            assert example["messages"][-1]["content"] in documents
        assert documents.count(tokenizer.eos_token) >= len({(e["source_text"], e["reference"]) for e in examples})


def test_scratch_base_saves_reloads_with_identical_logits(tiny_base, tokenizer) -> None:
    directory, metrics = tiny_base
    assert (directory / "model.safetensors").exists()
    assert not list(directory.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(directory)
    reloaded_tokenizer = AutoTokenizer.from_pretrained(directory)
    assert reloaded_tokenizer.chat_template and reloaded_tokenizer.pad_token and reloaded_tokenizer.eos_token == END
    assert model.generation_config.eos_token_id == reloaded_tokenizer.eos_token_id
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())
    assert metrics["vocab_size"] == len(reloaded_tokenizer)
    # pretraining learned something
    assert metrics["pretrain_loss_final"] < metrics["pretrain_loss_first"] - 0.5

    # a second load gives the same logits, and so does a reload of a fresh save
    ids = reloaded_tokenizer.apply_chat_template([{"role": "user", "content": "abot"}], add_generation_prompt=True,
                                                 return_tensors="pt", return_dict=True)["input_ids"]
    again = AutoModelForCausalLM.from_pretrained(directory)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)


def test_scratch_base_is_deterministic(tmp_path, examples_dir, tiny_base) -> None:
    directory, _ = tiny_base
    build_tiny_base(tmp_path / "again", examples_dir / "train.jsonl")
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (directory / name).read_bytes(), name


def test_generation_stops_at_the_saved_eos(tiny_base) -> None:
    directory, _ = tiny_base
    model = AutoModelForCausalLM.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "abot"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    # bias the end token up, as a model trained to close its answers would: the saved config must stop there
    out = model.generate(**inputs, max_new_tokens=10, do_sample=False,
                         sequence_bias={(tokenizer.eos_token_id,): 100.0})
    assert out[0, inputs["input_ids"].shape[1]:].tolist() == [tokenizer.eos_token_id]


def test_base_from_local_path_completes_tokenizer(tmp_path, tokenizer) -> None:
    source = tmp_path / "plain"
    model = build_model(tokenizer, TINY_SCRATCH, seed=1)
    plain = train_tokenizer(["a few words", "kata-kata"], vocab_size=300)
    plain.pad_token = None
    plain.chat_template = None
    model.save_pretrained(source)
    plain.save_pretrained(source)

    metrics = prepare_base(BaseParams(model=str(source)), seed=1, train_path=tmp_path / "unused.jsonl",
                           out_dir=tmp_path / "base")
    assert metrics["source"] == "local"
    loaded = AutoTokenizer.from_pretrained(tmp_path / "base")
    assert loaded.pad_token is not None and loaded.chat_template
    assert loaded.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                      add_generation_prompt=True).endswith("<|assistant|>\n")
    original, copied = AutoModelForCausalLM.from_pretrained(source), AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    ids = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        assert torch.equal(original(ids).logits, copied(ids).logits)
    assert (tmp_path / "base" / "model.safetensors").exists()


def test_hub_id_without_revision_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="base.revision"):
        prepare_base(BaseParams(model="someorg/some-model"), 1, tmp_path / "train.jsonl", tmp_path / "base")
    assert not (tmp_path / "base").exists()


def test_missing_local_path_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        prepare_base(BaseParams(model="./models/not-there"), 1, tmp_path / "train.jsonl", tmp_path / "base")


def test_bad_training_line_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"train\.jsonl:2"):
        read_examples(path)
    path.write_text(json.dumps({"messages": "text"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"train\.jsonl:1: 'messages'"):
        read_examples(path)


def test_pretraining_prints_plain_progress_lines_in_a_log(tokenizer, examples_dir, capsys) -> None:
    params = TINY_SCRATCH.model_copy(update={"steps": 6})
    model = build_model(tokenizer, params, seed=13)
    documents = pretraining_documents(read_examples(examples_dir / "train.jsonl"), tokenizer, "chat")
    pretrain(model, pack_blocks(documents, tokenizer, params.max_length), params, seed=13, log_every=3)
    printed = capsys.readouterr().err  # captured: not a terminal, as under `dvc repro`
    assert re.findall(r"^pretrain step (\d)/6 \(\d+%\)  loss \d\.\d{4}  [\d,]+ tokens/s  elapsed 0:\d\d  left 0:\d\d$",
                      printed, re.MULTILINE) == ["3", "6"]
    assert "\r" not in printed
