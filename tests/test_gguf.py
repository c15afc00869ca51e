"""GGUF export on tiny models: metadata, tensor layout and types, round trips through transformers' GGUF reader
(Llama with grouped-query attention and an untied output layer, Qwen2 with attention biases), the rotary
reordering against llama.cpp's rope, an extended vocabulary, and the errors for what cannot be exported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from tiny_models import build_tiny_base, train_tiny_adapter, write_examples
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from langfoundry.core.config import ExtendParams
from langfoundry.core.errors import UserError
from langfoundry.model.vocab_extension import extend_base, read_extension
from langfoundry.release.gguf_export import interleave_rotary_halves, write_gguf
from langfoundry.release.gguf_readback import load_gguf
from langfoundry.release.merge import load_merged, merge_adapter, prompt_logits

TEXTS = ["inyong mangan sega", "Terjemahkan dari bahasa Banyumasan ke bahasa Indonesia:\nkepriwe", "കടൽ ߞߊ߲ café", "  two  spaces"]


def field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """The tiny scratch base (trained Llama, tied embeddings, our byte-level BPE) and its f16 and q8_0 files."""
    root = tmp_path_factory.mktemp("gguf-scratch")
    write_examples(root)
    build_tiny_base(root / "model", root / "train.jsonl")
    for kind in ("f16", "q8_0"):
        write_gguf(root / "model", root / "gguf" / f"model-{kind}.gguf", kind, "tiny", license="mit", languages=["jv", "id"])
    return root


def random_model(directory: Path, config, model_class, tokenizer_dir: Path) -> Path:
    """A randomly initialised model with the tiny tokenizer, sized to the tokenizer as transformers loads it there
    (with a Qwen2 config.json it loads as Qwen2Tokenizer, which adds an unknown token)."""
    config.save_pretrained(directory)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config.vocab_size = len(tokenizer)
    torch.manual_seed(7)
    model = model_class(config)
    with torch.no_grad():  # random norms and biases too, so a tensor written in the wrong place shows in the logits
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1:
                parameter.copy_(1.0 + 0.1 * torch.randn_like(parameter) if "norm" in name else 0.1 * torch.randn_like(parameter))
            elif name.endswith(("q_proj.weight", "k_proj.weight")):  # sharp attention: positions (and rope) matter
                parameter.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def tiny_config(config_class, vocab_size: int, intermediate_size: int = 96, **extra):
    return config_class(vocab_size=vocab_size, hidden_size=64, intermediate_size=intermediate_size, num_hidden_layers=2,
                        num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                        **extra)


@pytest.fixture(scope="module")
def round_trip_models(scratch, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf-random")
    vocab = len(AutoTokenizer.from_pretrained(scratch / "model"))
    return {
        "llama-gqa-untied": random_model(root / "llama", tiny_config(LlamaConfig, vocab, tie_word_embeddings=False),
                                         LlamaForCausalLM, scratch / "model"),
        # ffn_down rows of 80 values are no whole number of Q8_0 blocks: that tensor stays F16 in the q8_0 file
        "qwen2": random_model(root / "qwen2", tiny_config(Qwen2Config, vocab, intermediate_size=80, tie_word_embeddings=True),
                              Qwen2ForCausalLM, scratch / "model"),
    }


def test_the_file_carries_architecture_tokenizer_and_chat_template(scratch):
    reader = gguf.GGUFReader(scratch / "gguf" / "model-f16.gguf")
    tokenizer = AutoTokenizer.from_pretrained(scratch / "model")
    config = LlamaConfig.from_pretrained(scratch / "model")
    assert field(reader, "general.architecture") == "llama"
    assert field(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_F16
    assert field(reader, "llama.block_count") == config.num_hidden_layers
    assert field(reader, "llama.embedding_length") == config.hidden_size
    assert field(reader, "llama.attention.head_count_kv") == config.num_key_value_heads
    assert field(reader, "llama.rope.dimension_count") == config.hidden_size // config.num_attention_heads

    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    assert field(reader, "tokenizer.ggml.tokens") == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids) | {tokenizer.convert_tokens_to_ids(t) for t in ("<|user|>", "<|assistant|>")}
    types = field(reader, "tokenizer.ggml.token_type")
    assert {index for index, kind in enumerate(types) if kind == gguf.TokenType.CONTROL} == special
    merges = json.loads((scratch / "model" / "tokenizer.json").read_text())["model"]["merges"]
    assert field(reader, "tokenizer.ggml.merges") == [" ".join(merge) for merge in merges]
    assert field(reader, "tokenizer.ggml.bos_token_id") == tokenizer.bos_token_id
    assert field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id
    assert field(reader, "tokenizer.ggml.padding_token_id") == tokenizer.pad_token_id
    assert field(reader, "tokenizer.chat_template") == tokenizer.chat_template

    names = {tensor.name for tensor in reader.tensors}
    per_block = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
    expected = {"token_embd.weight", "output_norm.weight"} | {f"blk.{i}.{part}.weight" for i in range(config.num_hidden_layers)
                                                             for part in per_block}
    assert names == expected  # tied embeddings: no output.weight, llama.cpp reuses token_embd


def test_q8_0_quantizes_the_matrices_and_keeps_norms_in_f32_and_the_output_layer_in_f16(scratch):
    f16 = gguf.GGUFReader(scratch / "gguf" / "model-f16.gguf")
    q8 = gguf.GGUFReader(scratch / "gguf" / "model-q8_0.gguf")
    kinds = {tensor.name: tensor.tensor_type for tensor in q8.tensors}
    assert all(kind == gguf.GGMLQuantizationType.F32 for name, kind in kinds.items() if name.endswith("_norm.weight"))
    # tied embeddings: token_embd is the output layer too, kept in F16
    assert kinds.pop("token_embd.weight") == gguf.GGMLQuantizationType.F16
    assert all(kind == gguf.GGMLQuantizationType.Q8_0 for name, kind in kinds.items() if not name.endswith("_norm.weight"))
    # 32 values in 34 bytes (an f16 scale and 32 int8) instead of 64 bytes in f16
    matrices = [(tensor, half) for tensor, half in zip(q8.tensors, f16.tensors)
                if not tensor.name.endswith("_norm.weight") and tensor.name != "token_embd.weight"]
    assert all(tensor.n_bytes * 32 == half.n_elements * 34 == half.n_bytes * 17 for tensor, half in matrices)

    model, _ = load_merged(scratch / "model")
    up = model.model.layers[0].mlp.up_proj.weight.detach().numpy()
    stored = {tensor.name: tensor for tensor in q8.tensors}["blk.0.ffn_up.weight"]
    restored = gguf.quants.dequantize(stored.data, stored.tensor_type)
    # one scale per block of 32 (its largest value / 127, itself stored in f16): the error is at most half a step,
    # plus the scale's own rounding (2^-11 relative) times 127 steps
    blocks = np.abs(up.reshape(-1, 32)).max(axis=1, keepdims=True)
    assert np.all(np.abs(restored - up).reshape(-1, 32) <= blocks * (1 / 254 + 1 / 2048) + 1e-7)
    assert not np.array_equal(restored, up)  # it really was quantized
    embeddings = model.get_input_embeddings().weight.detach().numpy()
    for reader in (f16, q8):
        half = {tensor.name: tensor for tensor in reader.tensors}["token_embd.weight"]
        assert np.array_equal(half.data, embeddings.astype(np.float16))


def test_writing_twice_gives_the_same_bytes(scratch, tmp_path):
    again = write_gguf(scratch / "model", tmp_path / "again.gguf", "q8_0", "tiny", license="mit", languages=["jv", "id"])
    assert again.path.read_bytes() == (scratch / "gguf" / "model-q8_0.gguf").read_bytes()


def test_rotary_reordering_gives_llama_cpp_rope_the_same_attention_scores():
    """Hugging Face rotates dimension i with i + d/2; llama.cpp's Llama rope rotates 2i with 2i+1. After reordering
    the query and key rows, llama.cpp's rope must give the same query-key products at every pair of positions."""
    rng = np.random.default_rng(0)
    heads, head_dim, width = 3, 8, 12
    inverse = 10000.0 ** (-np.arange(head_dim // 2) * 2 / head_dim)

    def rope_halves(vector, position):  # Hugging Face: rotate_half
        first, second = vector[: head_dim // 2], vector[head_dim // 2:]
        cos, sin = np.cos(position * inverse), np.sin(position * inverse)
        return np.concatenate([first * cos - second * sin, second * cos + first * sin])

    def rope_adjacent(vector, position):  # llama.cpp LLAMA_ROPE_TYPE_NORM
        even, odd = vector[0::2], vector[1::2]
        cos, sin = np.cos(position * inverse), np.sin(position * inverse)
        out = np.empty_like(vector)
        out[0::2], out[1::2] = even * cos - odd * sin, odd * cos + even * sin
        return out

    w_q, w_k = rng.normal(size=(heads * head_dim, width)), rng.normal(size=(heads * head_dim, width))
    x_q, x_k = rng.normal(size=width), rng.normal(size=width)
    hf_q, hf_k = (w_q @ x_q).reshape(heads, head_dim), (w_k @ x_k).reshape(heads, head_dim)
    cpp_q = (interleave_rotary_halves(w_q, heads) @ x_q).reshape(heads, head_dim)
    cpp_k = (interleave_rotary_halves(w_k, heads) @ x_k).reshape(heads, head_dim)
    for head in range(heads):
        for query_position, key_position in [(0, 0), (3, 1), (17, 5)]:
            expected = rope_halves(hf_q[head], query_position) @ rope_halves(hf_k[head], key_position)
            got = rope_adjacent(cpp_q[head], query_position) @ rope_adjacent(cpp_k[head], key_position)
            assert got == pytest.approx(expected, rel=1e-9)
    # and the reordering is not the identity: a file without it would give other scores
    assert not np.allclose(interleave_rotary_halves(w_q, heads), w_q)


@pytest.mark.parametrize("name", ["llama-gqa-untied", "qwen2"])
def test_round_trip_through_transformers_gguf_reader(round_trip_models, name, tmp_path):
    folder = round_trip_models[name]
    model, tokenizer = load_merged(folder)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
               for text in TEXTS]
    expected = prompt_logits(model, tokenizer, prompts)
    for kind, tolerance in (("f16", 0.02), ("q8_0", 0.08)):
        written = write_gguf(folder, tmp_path / f"{kind}.gguf", kind, name)
        read_model, read_tokenizer = load_gguf(written.path)
        assert read_model.config.model_type == model.config.model_type
        assert read_model.config.tie_word_embeddings == model.config.tie_word_embeddings
        for text in [*TEXTS, *prompts]:
            expected_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert read_tokenizer(text, add_special_tokens=False)["input_ids"] == expected_ids
        got = prompt_logits(read_model, read_tokenizer, prompts)
        scale = max(float(logits.abs().max()) for logits in expected)
        difference = max(float((a - b).abs().max()) for a, b in zip(expected, got))
        assert difference <= tolerance * scale, (kind, difference, scale)
    reader = gguf.GGUFReader(tmp_path / "f16.gguf")
    names = {tensor.name for tensor in reader.tensors}
    assert ("output.weight" in names) == (not model.config.tie_word_embeddings)
    assert ("blk.0.attn_q.bias" in names) == (name == "qwen2")
    q8_types = {tensor.name: tensor.tensor_type.name for tensor in gguf.GGUFReader(tmp_path / "q8_0.gguf").tensors}
    assert q8_types["blk.0.ffn_up.weight"] == "Q8_0"
    assert q8_types["blk.0.ffn_down.weight"] == ("F16" if name == "qwen2" else "Q8_0")


def test_an_extended_vocabulary_survives_merge_and_export(scratch, tmp_path):
    write_examples(tmp_path)
    shutil.copytree(scratch / "model", tmp_path / "base")
    extend_base(tmp_path / "base", tmp_path / "train.jsonl", ExtendParams(enabled=True, num_new_tokens=6, min_frequency=2))
    new_tokens = read_extension(tmp_path / "base")["new_tokens"]
    assert new_tokens
    train_tiny_adapter(tmp_path)
    examples = [{"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]} for text in TEXTS]
    merged = merge_adapter(tmp_path / "base", tmp_path / "adapter", tmp_path / "merged", examples)
    written = write_gguf(tmp_path / "merged", tmp_path / "model-f16.gguf", "f16", "extended")

    reader = gguf.GGUFReader(written.path)
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == len(merged.tokenizer)
    merges = field(reader, "tokenizer.ggml.merges")
    for token in new_tokens:
        assert tokens[token["id"]] == token["token"]
        assert " ".join(token["merge"]) in merges
    _, read_tokenizer = load_gguf(written.path)
    for token in new_tokens:
        assert read_tokenizer.decode([token["id"]]) == merged.tokenizer.decode([token["id"]]) == token["text"]
    words = [token["text"].strip() for token in new_tokens]
    encoded = [read_tokenizer(word, add_special_tokens=False)["input_ids"] for word in words]
    assert encoded == [merged.tokenizer(word, add_special_tokens=False)["input_ids"] for word in words]
    assert {token["id"] for token in new_tokens} & {index for ids in encoded for index in ids}  # the new tokens are used


def test_an_unsupported_architecture_is_a_one_line_error(scratch, tmp_path):
    vocab = len(AutoTokenizer.from_pretrained(scratch / "model"))
    folder = random_model(tmp_path / "gpt2", GPT2Config(vocab_size=vocab, n_embd=32, n_layer=1, n_head=2, n_positions=64),
                          GPT2LMHeadModel, scratch / "model")
    with pytest.raises(UserError) as error:
        write_gguf(folder, tmp_path / "out.gguf", "f16", "gpt2")
    message = str(error.value)
    assert "\n" not in message and "'gpt2'" in message and "llama, qwen2" in message and "export.gguf_types" in message
    assert not (tmp_path / "out.gguf").exists()


def test_a_tokenizer_llama_cpp_cannot_split_the_same_way_is_refused(scratch, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(scratch / "model", folder)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Whitespace"}
    (folder / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"the tokenizer's pre_tokenizer .* not one llama\.cpp knows"):
        write_gguf(folder, tmp_path / "out.gguf", "f16", "tiny")


def test_an_unknown_file_type_names_the_parameter(scratch, tmp_path):
    with pytest.raises(UserError, match="export.gguf_types"):
        write_gguf(scratch / "model", tmp_path / "out.gguf", "q4_k", "tiny")
