"""The merged model as a GGUF file for llama.cpp and Ollama, written with the `gguf` package's GGUFWriter.

What llama.cpp expects, and what this writes:
- the architecture's hyperparameters under `<arch>.*` keys, every tensor under llama.cpp's name
  (gguf.get_tensor_name_map turns `model.layers.0.self_attn.q_proj.weight` into `blk.0.attn_q.weight`);
- for Llama, the query and key rows of each head reordered: Hugging Face pairs rotary dimension i with
  i + head_dim/2 (rotate_half), llama.cpp's Llama rope pairs 2i with 2i+1. Qwen2 runs llama.cpp's
  NeoX-style rope, which pairs them as Hugging Face does, so its rows stay as they are;
- 1-D tensors (norms, biases) in F32 as llama.cpp's kernels want them; matrices in F16, or in Q8_0
  (blocks of 32 values sharing one scale) through gguf.quants, F16 where a row is not a whole number of blocks.
  The output layer (token_embd when the embeddings are tied, else output.weight) stays F16 in a Q8_0 file,
  as llama.cpp's quantize does with --output-tensor-type f16: greedy answers turn on its small logit gaps (on
  the default model, Q8_0 everywhere kept 93.9% of answers identical, F16 output 98.5%);
- the byte-level BPE tokenizer ("gpt2" in llama.cpp's terms): every token in its byte-level spelling with
  its type, the merges in order (a vocabulary extension's appended merges included), bos/eos/pad ids and
  the chat template.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.errors import UserError

FILE_TYPES = ("f16", "q8_0")


@dataclass(frozen=True)
class Architecture:
    gguf_name: str  # general.architecture in the file
    interleave_rotary: bool  # llama.cpp's rope for this architecture pairs adjacent dimensions
    rope_dimension_count: bool  # llama.cpp reads <arch>.rope.dimension_count


# Hugging Face model_type -> how llama.cpp knows it
ARCHITECTURES = {
    "llama": Architecture("llama", interleave_rotary=True, rope_dimension_count=True),
    "qwen2": Architecture("qwen2", interleave_rotary=False, rope_dimension_count=False),
}


@dataclass(frozen=True)
class GgufFile:
    path: Path
    file_type: str
    bytes: int
    tensor_types: dict[str, int]  # ggml type name -> tensors stored in it


def architecture_of(config, where: str) -> Architecture:
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        names = ", ".join(getattr(config, "architectures", None) or [str(model_type)])
        raise UserError(f"{where}: architecture {model_type!r} ({names}) cannot be exported to GGUF; supported: "
                        f"{', '.join(sorted(ARCHITECTURES))} (set export.gguf_types: [] in params.yaml to export only "
                        "the merged model)")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise UserError(f"{where}: hidden_act {config.hidden_act!r}; llama.cpp's {model_type} graph computes silu only")
    return ARCHITECTURES[model_type]


def rope_settings(config, where: str) -> float:
    """The rotary base; plain rotary embeddings only (a scaled rope would need its own keys)."""
    rope = getattr(config, "rope_parameters", None) or {}
    kind = rope.get("rope_type", "default")
    if kind != "default":
        raise UserError(f"{where}: rope_type {kind!r} is not exported to GGUF here; only plain rotary embeddings are")
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def interleave_rotary_halves(rows, heads: int):
    """Reorder each head's rows from [first half; second half] to alternating (first[0], second[0], first[1], ...)."""
    import numpy as np

    grouped = rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:])
    return np.stack([grouped[:, 0], grouped[:, 1]], axis=2).reshape(rows.shape)


def stored(name: str, array, file_type: str, output_layer: bool = False):
    """(data, ggml type) for one tensor: F32 vectors and norms, F16 or Q8_0 matrices; the output layer F16."""
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants

    if array.ndim <= 1 or name.endswith("_norm.weight"):
        return array.astype(np.float32), GGMLQuantizationType.F32
    block = GGML_QUANT_SIZES[GGMLQuantizationType.Q8_0][0]
    if file_type == "q8_0" and array.shape[-1] % block == 0 and not output_layer:
        return quants.quantize(array.astype(np.float32), GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0
    return array.astype(np.float16), GGMLQuantizationType.F16


# --- the tokenizer --------------------------------------------------------------------------------------


def pre_tokenizer_name(spec: dict[str, Any] | None, where: str) -> str:
    """llama.cpp's name for how the tokenizer splits text before BPE (tokenizer.ggml.pre)."""
    spec = spec or {}
    if spec.get("type") == "ByteLevel" and spec.get("use_regex", True):
        return "gpt-2"  # the GPT-2 split pattern, which ByteLevel applies itself
    parts = spec.get("pretokenizers", []) if spec.get("type") == "Sequence" else []
    if (len(parts) == 2 and parts[0].get("type") == "Split" and parts[1].get("type") == "ByteLevel"
            and not parts[1].get("use_regex", True)):
        pattern = parts[0].get("pattern", {}).get("Regex")
        for name, known in known_split_patterns().items():
            if pattern == known:
                return name
    raise UserError(f"{where}: the tokenizer's pre_tokenizer ({json.dumps(spec)[:120]}) is not one llama.cpp knows by name; "
                    "set export.gguf_types: [] in params.yaml to export only the merged model")


def known_split_patterns() -> dict[str, str]:
    """Split patterns by llama.cpp's names, as transformers' own GGUF reader lists them."""
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
    except ImportError:  # a transformers without the table: the byte-level default still exports
        return {}
    return dict(GGUF_PRE_TOKENIZER_SPLITS)


def tokenizer_metadata(tokenizer, vocab_size: int, where: str) -> dict[str, Any]:
    """Tokens (by id), their types, merges, pre-tokenizer and special ids of a byte-level BPE tokenizer, as
    transformers loads it (its backend, with any token added at load time), so the file tokenizes the same."""
    from gguf import TokenType

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UserError(f"{where}: GGUF export needs a fast (tokenizers) tokenizer saved with the model")
    data = json.loads(backend.to_str())
    model = data["model"]
    if model.get("type") != "BPE" or model.get("byte_fallback") or (data.get("decoder") or {}).get("type") != "ByteLevel":
        raise UserError(f"{where}: only byte-level BPE tokenizers are exported to GGUF (this one is {model.get('type')}"
                        f"{' with byte fallback' if model.get('byte_fallback') else ''}); "
                        "set export.gguf_types: [] in params.yaml to export only the merged model")
    tokens = [f"[PAD{index}]" for index in range(vocab_size)]  # rows the model has and the tokenizer never emits
    types = [TokenType.UNUSED] * vocab_size
    entries = [(token, index, TokenType.NORMAL) for token, index in model["vocab"].items()]
    entries += [(added.content, index, TokenType.CONTROL if added.special else TokenType.USER_DEFINED)
                for index, added in tokenizer.added_tokens_decoder.items()]
    for token, index, kind in entries:
        if index >= vocab_size:
            raise UserError(f"{where}: token {token!r} has id {index} but the model has {vocab_size} embedding rows; "
                            "rerun the base stage and the stages after it (dvc repro)")
        tokens[index], types[index] = token, kind
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", [])]
    probe = tokenizer("a")["input_ids"]  # whether encoding adds bos/eos by itself (ours does not: the template does)
    return {
        "tokens": tokens, "types": types, "merges": merges,
        "pre": pre_tokenizer_name(data.get("pre_tokenizer"), where),
        "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id,
        "unk": tokenizer.unk_token_id,
        "add_bos": tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id],
        "add_eos": tokenizer.eos_token_id is not None and probe[-1:] == [tokenizer.eos_token_id],
        "chat_template": tokenizer.chat_template,
    }


def add_tokenizer(writer, meta: dict[str, Any]) -> None:
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre(meta["pre"])
    writer.add_token_list(meta["tokens"])
    writer.add_token_types(meta["types"])
    writer.add_token_merges(meta["merges"])
    for key, adder in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                       ("pad", writer.add_pad_token_id), ("unk", writer.add_unk_token_id)):
        if meta[key] is not None:
            adder(meta[key])
    writer.add_add_bos_token(meta["add_bos"])
    writer.add_add_eos_token(meta["add_eos"])
    if isinstance(meta["chat_template"], str) and meta["chat_template"]:
        writer.add_chat_template(meta["chat_template"])


# --- the file -------------------------------------------------------------------------------------------


def add_hyperparameters(writer, config, arch: Architecture, vocab_size: int, where: str) -> None:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(rope_settings(config, where))
    writer.add_vocab_size(vocab_size)
    if arch.rope_dimension_count:
        writer.add_rope_dimension_count(head_dim)
    if head_dim * heads != config.hidden_size:  # llama.cpp assumes hidden_size / heads unless told
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def gguf_tensors(model, arch: Architecture, file_type: str, where: str):
    """(llama.cpp name, data, ggml type) for every parameter; a tied output layer is stored once, as token_embd."""
    import gguf

    config = model.config
    name_map = gguf.get_tensor_name_map(next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch.gguf_name),
                                        config.num_hidden_layers)
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    for hf_name, parameter in model.named_parameters():  # tied weights are listed once, under their first name
        name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UserError(f"{where}: tensor {hf_name} has no llama.cpp name for architecture {arch.gguf_name}; "
                            "set export.gguf_types: [] in params.yaml to export only the merged model")
        array = parameter.detach().float().cpu().numpy()
        if arch.interleave_rotary and ".attn_q." in name:
            array = interleave_rotary_halves(array, heads)
        elif arch.interleave_rotary and ".attn_k." in name:
            array = interleave_rotary_halves(array, kv_heads)
        output_layer = name == "output.weight" or (name == "token_embd.weight" and config.tie_word_embeddings)
        yield (name, *stored(name, array, file_type, output_layer))


def write_gguf(model_dir: str | Path, out_path: str | Path, file_type: str, model_name: str,
               license: str | None = None, languages: Sequence[str] = ()) -> GgufFile:
    """Write the Hugging Face model in model_dir (merged, safetensors) as one GGUF file of file_type (f16 or q8_0)."""
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if file_type not in FILE_TYPES:
        raise UserError(f"params.yaml: export.gguf_types has {file_type!r}; use {' or '.join(FILE_TYPES)}")
    model_dir, out_path = Path(model_dir), Path(out_path)
    where = str(model_dir)
    arch = architecture_of(AutoConfig.from_pretrained(model_dir), where)  # before loading weights: fail fast
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vocab_size = model.get_input_embeddings().weight.shape[0]
    meta = tokenizer_metadata(tokenizer, vocab_size, where)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("gguf").setLevel(logging.WARNING)  # its INFO lines restate the file name and size
    writer = gguf.GGUFWriter(out_path, arch.gguf_name)
    writer.add_name(model_name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if file_type == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if license:
        writer.add_license(license)
    if languages:
        writer.add_languages(list(languages))
    add_hyperparameters(writer, model.config, arch, vocab_size, where)
    add_tokenizer(writer, meta)
    kinds: Counter = Counter()
    for name, data, kind in gguf_tensors(model, arch, file_type, where):
        writer.add_tensor(name, data, raw_dtype=kind)
        kinds[kind.name] += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return GgufFile(path=out_path, file_type=file_type, bytes=out_path.stat().st_size, tensor_types=dict(sorted(kinds.items())))
