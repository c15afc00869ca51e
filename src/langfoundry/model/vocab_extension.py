"""Vocabulary extension: new tokens learnt on the target-language training text, added to the base model.

The new tokens continue the base tokenizer's own BPE. Each word of the training text is first cut into
the base tokenizer's pieces; a BPE model (the `tokenizers` trainer) is then trained on those piece
sequences, so each merge it learns joins two tokens the base tokenizer already produces, and the merges
come most frequent first: a merge seen f times saves f tokens on the training text. The first merges
whose results the vocabulary lacks give the new tokens.

They are added as ordinary vocabulary entries with their merges appended after the base merges, not
with `tokenizer.add_tokens`: an added token is matched in the raw text before normalisation and
pre-tokenisation, anywhere, even inside another word, and its word-start space variants would each
need a token of their own. Appended merges only apply once every base merge has, so the base
tokenizer's segmentation is kept and new tokens form where their pieces meet inside one word.

Each new embedding row starts as the mean of the rows of the base tokens it used to split into (the
output layer's rows too when it is not tied to the input embeddings); fine-tuning trains exactly these
rows through peft's `trainable_token_indices`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.config import ExtendParams
from langfoundry.core.errors import UserError
from langfoundry.model.base import read_examples
from langfoundry.model.scoring import target_language_texts

log = logging.getLogger(__name__)

EXTENSION_FILE = "vocabulary_extension.json"  # in the base model's directory, when the vocabulary was extended
ORIGINAL_TOKENIZER_DIR = "original_tokenizer"  # the tokenizer before extension, for before/after figures

BYTE_FALLBACK_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")  # SentencePiece-style byte pieces
SENTENCEPIECE_SPACE = "\u2581"

# Stand-ins for base tokens while the BPE trainer runs on piece sequences: Unicode's supplementary private
# use planes, characters no tokenizer or text gives a meaning to.
_STAND_INS = [chr(code) for code in range(0xF0000, 0xFFFFE)] + [chr(code) for code in range(0x100000, 0x10FFFE)]


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str  # the vocabulary entry, in the tokenizer's own spelling (byte-level or SentencePiece)
    text: str  # what it decodes to
    merge: tuple[str, str]
    pieces: tuple[int, ...]  # the base token ids it used to split into


# --- learning the merges ----------------------------------------------------------------------------------


def bpe_model(tokenizer) -> dict[str, Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UserError("vocabulary extension needs a fast (tokenizers-backed) tokenizer; this base model has none")
    model = json.loads(backend.to_str())["model"]
    if model.get("type") != "BPE":
        raise UserError(f"vocabulary extension supports BPE tokenizers; this one is {model.get('type')}: "
                        "set tokenizer.extend.enabled: false")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise UserError("vocabulary extension does not support BPE with subword prefixes or suffixes; "
                        "set tokenizer.extend.enabled: false")
    return model


def word_pieces(tokenizer, texts: Iterable[str], byte_fallback: bool) -> Counter:
    """How often each word of the texts occurs, as the tuple of the base tokenizer's pieces.

    A word is one piece of the tokenizer's pre-tokenizer; without one (SentencePiece style) a new word
    starts at each "▁". Unknown tokens, byte-fallback pieces and added tokens end a word: merging them
    would not give a readable token.
    """
    backend = tokenizer.backend_tokenizer
    added = {token.content for token in tokenizer.added_tokens_decoder.values()}
    break_at_marker = backend.pre_tokenizer is None
    counts: Counter = Counter()
    for encoding in backend.encode_batch(list(texts), add_special_tokens=False):
        word: list[str] = []
        previous = None
        for token, word_id in zip(encoding.tokens, encoding.word_ids):
            unusable = token in added or token == tokenizer.unk_token or (byte_fallback and BYTE_FALLBACK_TOKEN.fullmatch(token))
            starts_word = word_id != previous or (break_at_marker and token.startswith(SENTENCEPIECE_SPACE))
            if word and (starts_word or unusable):
                counts[tuple(word)] += 1
                word = []
            if not unusable:
                word.append(token)
            previous = word_id
        if word:
            counts[tuple(word)] += 1
    return counts


def learn_merges(words: Counter, max_merges: int, min_frequency: int) -> list[tuple[str, str]]:
    """BPE merges learnt on words given as piece tuples, most frequent first, as (left, right) token strings."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    pieces = sorted({piece for word in words for piece in word})
    if len(pieces) > len(_STAND_INS):
        raise UserError(f"the training text uses {len(pieces)} distinct base tokens; at most {len(_STAND_INS)} are supported")
    stand_in = dict(zip(pieces, _STAND_INS))
    piece_of = {char: piece for piece, char in stand_in.items()}
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=len(pieces) + max_merges, min_frequency=min_frequency,
                                  show_progress=False, special_tokens=[])

    def batches():
        for word, count in sorted(words.items()):
            yield ["".join(stand_in[piece] for piece in word)] * count

    bpe.train_from_iterator(batches(), trainer=trainer)
    merges = json.loads(bpe.to_str())["model"]["merges"]
    pairs = [merge.split(" ", 1) if isinstance(merge, str) else merge for merge in merges]
    return [("".join(piece_of[c] for c in left), "".join(piece_of[c] for c in right)) for left, right in pairs]


def plan_new_tokens(tokenizer, merges: Sequence[tuple[str, str]], limit: int) -> tuple[list[tuple[str, str]], list[NewToken]]:
    """The merges to append and the new tokens they make, up to `limit` new tokens, with fresh ids."""
    vocab = tokenizer.get_vocab()
    added = {token.content for token in tokenizer.added_tokens_decoder.values()}
    next_id = max(vocab.values()) + 1
    pieces: dict[str, tuple[int, ...]] = {}
    kept: list[tuple[str, str]] = []
    new: list[NewToken] = []
    for left, right in merges:
        if len(new) == limit:
            break
        result = left + right
        if result in added or any(part in added or (part not in vocab and part not in pieces) for part in (left, right)):
            continue  # never build on a special token
        kept.append((left, right))
        if result in vocab or result in pieces:
            continue  # the base vocabulary has it already, only unreachable: the merge makes it reachable
        parts = [pieces[part] if part in pieces else (vocab[part],) for part in (left, right)]
        pieces[result] = parts[0] + parts[1]
        new.append(NewToken(id=next_id, token=result, text="", merge=(left, right), pieces=pieces[result]))
        next_id += 1
    return kept, new


def extended_tokenizer(tokenizer, merges: Sequence[tuple[str, str]], new_tokens: Sequence[NewToken], workdir: Path):
    """The tokenizer with the new entries and the merges appended, saved under workdir and loaded back."""
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(workdir)
    path = workdir / "tokenizer.json"
    if not path.exists():
        raise UserError("vocabulary extension needs a tokenizer saved as tokenizer.json; this base tokenizer is not")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data["model"]
    string_merges = bool(model["merges"]) and isinstance(model["merges"][0], str)
    for token in new_tokens:
        model["vocab"][token.token] = token.id
    model["merges"].extend(f"{left} {right}" if string_merges else [left, right] for left, right in merges)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    extended = AutoTokenizer.from_pretrained(workdir)
    wrong = [token.token for token in new_tokens if extended.convert_tokens_to_ids(token.token) != token.id]
    if wrong or len(extended) != len(tokenizer) + len(new_tokens):
        raise UserError(f"the extended tokenizer did not keep the new tokens' ids ({wrong[:3]}); "
                        "set tokenizer.extend.enabled: false for this base model")
    return extended


# --- the model -----------------------------------------------------------------------------------------


def embeddings_are_tied(model) -> bool:
    output = model.get_output_embeddings()
    return output is None or output.weight is model.get_input_embeddings().weight


def add_embedding_rows(model, new_tokens: Sequence[NewToken], vocab_size: int) -> None:
    """Grow the embeddings to vocab_size rows and start each new row as the mean of its pieces' rows."""
    import torch

    rows = model.get_input_embeddings().weight.shape[0]
    if vocab_size > rows:  # models that pad their matrix (say to a multiple of 128) may already have room
        model.resize_token_embeddings(vocab_size, mean_resizing=False)  # every new row is set below
    layers = [model.get_input_embeddings()]
    if not embeddings_are_tied(model):
        layers.append(model.get_output_embeddings())
    with torch.no_grad():
        for layer in layers:
            weight = layer.weight
            for token in new_tokens:
                weight[token.id] = weight[list(token.pieces)].float().mean(dim=0).to(weight.dtype)


def vocabulary_sizes(model, tokenizer) -> dict[str, int]:
    output = model.get_output_embeddings()
    return {
        "tokenizer": len(tokenizer),
        "input_embeddings": model.get_input_embeddings().weight.shape[0],
        "output_layer": output.weight.shape[0] if output is not None else model.get_input_embeddings().weight.shape[0],
        "config": model.config.get_text_config().vocab_size,
    }


def check_vocabulary(model, tokenizer, where: str) -> dict[str, int]:
    """The embedding matrix, output layer and config agree, and hold a row for every token of the tokenizer."""
    sizes = vocabulary_sizes(model, tokenizer)
    rows = {sizes["input_embeddings"], sizes["output_layer"], sizes["config"]}
    if len(rows) != 1 or sizes["tokenizer"] > min(rows):
        raise UserError(f"{where}: vocabulary sizes disagree ({sizes}); the tokenizer and the model come from "
                        "different runs: rerun the base stage and the stages after it (dvc repro)")
    return sizes


def trainable_token_indices(model, token_ids: Sequence[int]):
    """peft's `trainable_token_indices` for the new rows: the input embeddings (and a tied output layer with
    them), or, when the output layer is separate, both layers by name."""
    ids = sorted(token_ids)
    if embeddings_are_tied(model):
        return ids
    names = {id(module): name.rsplit(".", 1)[-1] for name, module in model.named_modules()}
    return {names[id(model.get_input_embeddings())]: ids, names[id(model.get_output_embeddings())]: ids}


def expose_output_bias(model) -> None:
    """Let TRL's fused LM head read `bias` through peft's token wrapper on the output layer.

    SFTTrainer scores tokens from `lm_head.weight` and `lm_head.bias` directly. peft's wrapper hands out
    the weight with the trained rows in place but has no `bias`, so training would stop at the first step.
    The wrapped layer's bias (None for Llama-style heads) is set as a plain attribute, outside the state dict.
    """
    from peft.utils.other import TrainableTokensWrapper

    output = model.get_output_embeddings()
    if isinstance(output, TrainableTokensWrapper) and "bias" not in vars(output):
        object.__setattr__(output, "bias", getattr(output.token_adapter.get_base_layer(), "bias", None))


def new_token_ids(base_dir: str | Path) -> list[int]:
    """Ids of the tokens the base stage added (none when the vocabulary was not extended)."""
    path = Path(base_dir) / EXTENSION_FILE
    if not path.exists():
        return []
    return [token["id"] for token in json.loads(path.read_text(encoding="utf-8"))["new_tokens"]]


def read_extension(base_dir: str | Path) -> dict[str, Any] | None:
    path = Path(base_dir) / EXTENSION_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


# --- the stage step ------------------------------------------------------------------------------------


def extend_base(base_dir: str | Path, train_path: str | Path, params: ExtendParams,
                trust_remote_code: bool = False) -> dict[str, Any]:
    """Extend the saved base model in base_dir with new tokens from the training text; returns the metrics."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = Path(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir, trust_remote_code=trust_remote_code)
    byte_fallback = bool(bpe_model(tokenizer).get("byte_fallback"))
    texts = [text for _, text in target_language_texts(read_examples(train_path))]
    words = word_pieces(tokenizer, texts, byte_fallback)
    # a few more merges than tokens: a merge whose result the vocabulary already holds adds no token
    merges = learn_merges(words, params.num_new_tokens + params.num_new_tokens // 4 + 8, params.min_frequency)
    merges, new_tokens = plan_new_tokens(tokenizer, merges, params.num_new_tokens)

    staging = base_dir.with_name(base_dir.name + ".extending")
    shutil.rmtree(staging, ignore_errors=True)
    with tempfile.TemporaryDirectory() as workdir:
        extended = extended_tokenizer(tokenizer, merges, new_tokens, Path(workdir))
    new_tokens = [NewToken(**{**asdict(token), "text": extended.decode([token.id])}) for token in new_tokens]
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto", trust_remote_code=trust_remote_code,
                                                 use_safetensors=True)
    add_embedding_rows(model, new_tokens, len(extended))
    sizes = check_vocabulary(model, extended, "the extended base model")

    model.save_pretrained(staging)
    extended.save_pretrained(staging)
    tokenizer.save_pretrained(staging / ORIGINAL_TOKENIZER_DIR)
    uses = Counter(token_id for ids in extended(texts, add_special_tokens=False)["input_ids"] for token_id in ids)
    record = {
        "original_vocab_size": len(tokenizer),
        "vocab_size": len(extended),
        "tied_embeddings": embeddings_are_tied(model),
        "merges_added": len(merges),
        "new_tokens": [{**asdict(token), "uses_in_training_text": uses[token.id]} for token in new_tokens],
    }
    (staging / EXTENSION_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(base_dir)
    staging.rename(base_dir)

    before = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    after = sum(uses.values())
    log.info("vocabulary extension: %d new tokens, training text %d -> %d tokens", len(new_tokens), before, after)
    return {
        "vocab_size": sizes["tokenizer"],
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "extension": {
            "new_tokens": len(new_tokens),
            "requested": params.num_new_tokens,
            "original_vocab_size": len(tokenizer),
            "training_tokens_before": before,
            "training_tokens_after": after,
            "training_tokens_saved": (before - after) / before if before else 0.0,
        },
    }


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, trust_remote_code: bool = False):
    """Merge a LoRA adapter (with its trained token rows) into the base and save it with the adapter's tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, trust_remote_code=trust_remote_code,
                                                use_safetensors=True)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir, trust_remote_code=trust_remote_code)
    sizes = check_vocabulary(merged, tokenizer, f"{adapter_dir} merged into {base_dir}")
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return merged, tokenizer, sizes
