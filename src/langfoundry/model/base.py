"""The base model: a small causal LM pretrained from scratch on the training text, or a pinned pretrained one.

Either way the result lands in one directory (safetensors weights, tokenizer with a pad token and a chat
template, generation config whose eos stops generation), so later stages always read `models/base/`.

The scratch tokenizer is byte-level BPE: every string, in any script, round-trips without unknown tokens.
Chat turns are `<|role|>\\n{content}` closed by the eos token, and the prompt for generation ends with
`<|assistant|>\\n`, so a trained model answers and then emits eos, which stops `generate`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from langfoundry.core.config import BaseParams, ScratchParams
from langfoundry.core.errors import UserError
from langfoundry.model.determinism import describe_cpu_kernels, pin_threads
from langfoundry.model.progress import Progress, quiet_library_output

log = logging.getLogger(__name__)

PAD, BOS, END = "<|pad|>", "<|bos|>", "<|end|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, END, *ROLE_TOKENS]

# One template for scratch and for pretrained models that ship none: the eos token closes every turn, so
# generation after `add_generation_prompt` stops right after the answer. For a scratch tokenizer the role
# markers are special tokens; for any other tokenizer they are plain text.
CHAT_TEMPLATE = (
    "{%- if bos_token %}{{ bos_token }}{% endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('chat roles must be system, user or assistant, not ' + message['role']) }}"
    "{%- endif -%}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif -%}"
)


# --- reading the training examples ---------------------------------------------------------------------


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    """The examples of a processed jsonl file; a line that is not a chat example is a UserError naming it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the format stage first (dvc repro format)")
    examples = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                example = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: not valid JSON ({err.msg}); rerun the format stage") from None
            messages = example.get("messages") if isinstance(example, dict) else None
            if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            ):
                raise UserError(
                    f"{path}:{number}: 'messages' must be a non-empty list of {{role, content}} strings; rerun the format stage"
                )
            examples.append(example)
    if not examples:
        raise UserError(f"{path}: has no examples; check the format stage's metrics for what was dropped")
    return examples


def example_texts(examples: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Every piece of language in the examples: each message, and the source text and reference."""
    for example in examples:
        for message in example["messages"]:
            yield message["content"]
        for key in ("source_text", "reference"):
            if isinstance(example.get(key), str) and example[key]:
                yield example[key]


# --- tokenizer -------------------------------------------------------------------------------------------


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on the texts, wrapped for transformers with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever unknown
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=END,
        pad_token=PAD,
        additional_special_tokens=ROLE_TOKENS,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# --- model -----------------------------------------------------------------------------------------------


def build_model(tokenizer, params: ScratchParams, seed: int):
    """A freshly initialised Llama-style causal LM sized by params (weights seeded)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads,
        # rotary positions have no table to outgrow; allow fine-tuning and prompts longer than pretraining
        max_position_embeddings=max(1024, params.max_length),
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def pretraining_documents(examples: Iterable[dict[str, Any]], tokenizer, corpus: str) -> list[str]:
    """The pretraining text, each document opened by bos and closed by eos.

    "chat": every example rendered as a whole chat, so the model learns the words and the turn format.
    "text": each distinct (source text, reference) pair as a two-line document, so the model learns the
    words and their glosses while following instructions is left to fine-tuning.
    """
    if corpus == "chat":
        return [tokenizer.apply_chat_template(example["messages"], tokenize=False) for example in examples]
    pairs = sorted({(ex["source_text"], ex["reference"]) for ex in examples if ex.get("source_text") and ex.get("reference")})
    if not pairs:  # examples without source/reference fields: each message is a document of its own
        pairs = sorted({(m["content"], "") for ex in examples for m in ex["messages"]})
    return [tokenizer.bos_token + "\n".join(filter(None, pair)) + tokenizer.eos_token for pair in pairs]


def pack_blocks(documents: list[str], tokenizer, block_length: int):
    """Documents tokenized, concatenated and cut into equal blocks (no padding; a tail short of a block is dropped)."""
    import torch

    stream: list[int] = []
    for document in documents:
        stream.extend(tokenizer(document, add_special_tokens=False)["input_ids"])
    count = len(stream) // block_length
    if count == 0:
        raise UserError(
            f"the training text has {len(stream)} tokens, fewer than base.scratch.max_length={block_length}; "
            "lower base.scratch.max_length or add data"
        )
    return torch.tensor(stream[: count * block_length], dtype=torch.long).view(count, block_length)


@contextlib.contextmanager
def deterministic_torch():
    """Deterministic kernels for the duration (restored afterwards so callers keep their own setting)."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def pretrain(model, blocks, params: ScratchParams, seed: int, log_every: int | None = None) -> dict[str, Any]:
    """Full-parameter next-token training on the blocks: AdamW, warm-up then cosine decay; returns the loss curve.

    Progress: a bar on a terminal, else a line every log_every steps (default: about 20 lines in all).
    """
    import torch
    from transformers import get_cosine_schedule_with_warmup

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=0.01)
    warmup = max(1, params.steps // 20)
    schedule = get_cosine_schedule_with_warmup(optimizer, warmup, params.steps)
    order = torch.empty(0, dtype=torch.long)
    losses: list[float] = []
    tokens = 0
    model.train()
    progress = Progress("pretrain", params.steps, every=log_every)
    for step in range(1, params.steps + 1):
        if len(order) < params.batch_size:  # a new pass over the blocks, in a seeded order
            order = torch.cat([order, torch.randperm(len(blocks), generator=generator)])
        batch, order = blocks[order[: params.batch_size]].to(device), order[params.batch_size:]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += batch.numel()
        progress.update(step, losses[-1], tokens)
    progress.close()
    model.eval()
    seconds = time.perf_counter() - progress.started
    tail = losses[-10:]
    return {
        "loss_first": losses[0],
        "loss_final": sum(tail) / len(tail),  # mean of the last steps: one batch alone is noisy
        "steps": params.steps,
        "tokens_seen": tokens,
        "tokens_per_second": tokens / seconds if seconds else math.nan,
    }


def build_scratch(examples: list[dict[str, Any]], params: ScratchParams, seed: int):
    """Tokenizer and model trained from nothing but the examples; returns (model, tokenizer, metrics)."""
    started = time.perf_counter()
    tokenizer = train_tokenizer(example_texts(examples), params.vocab_size)
    model = build_model(tokenizer, params, seed)
    blocks = pack_blocks(pretraining_documents(examples, tokenizer, params.corpus), tokenizer, params.max_length)
    with deterministic_torch():
        curve = pretrain(model, blocks, params, seed)
    metrics = {
        "source": "scratch",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "pretrain_blocks": len(blocks),
        **{f"pretrain_{key}": value for key, value in curve.items()},
        "wall_seconds": time.perf_counter() - started,
    }
    return model, tokenizer, metrics


# --- pretrained models -----------------------------------------------------------------------------------


def is_local_reference(reference: str) -> bool:
    return Path(reference).exists() or reference.startswith((".", "/", "~"))


def load_pretrained(params: BaseParams):
    """A pretrained model and tokenizer from a local directory or a Hugging Face id at a pinned revision."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reference = params.model
    local = is_local_reference(reference)
    if local and not Path(reference).expanduser().exists():
        raise UserError(f"params.yaml: base.model = {reference!r}: no such directory; give an existing path or a hub id")
    if not local and not params.revision:
        raise UserError(
            f"params.yaml: base.model = {reference!r} is a Hugging Face id but base.revision is not set; "
            "pin a commit sha or tag so the base model cannot change under the pipeline"
        )
    location = str(Path(reference).expanduser()) if local else reference
    options = {"revision": None if local else params.revision, "trust_remote_code": params.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **options)
        # safetensors only: a pickled checkpoint (pytorch_model.bin) could run code when loaded
        model = AutoModelForCausalLM.from_pretrained(location, dtype="auto", use_safetensors=True, **options)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"params.yaml: base.model = {reference!r} could not be loaded: {first_line}") from err
    return model, tokenizer


def complete_tokenizer(model, tokenizer) -> None:
    """Give a pretrained tokenizer what later stages rely on: eos, pad and a chat template; mirror them on the model."""
    if tokenizer.eos_token is None:
        raise UserError("the base tokenizer has no eos token; choose a base model whose tokenizer defines one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels come from masks, so pad may share eos's id
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    model.config.pad_token_id = tokenizer.pad_token_id
    generation = model.generation_config
    if generation.pad_token_id is None:
        generation.pad_token_id = tokenizer.pad_token_id
    eos_ids = generation.eos_token_id
    eos_ids = [] if eos_ids is None else [eos_ids] if isinstance(eos_ids, int) else list(eos_ids)
    if tokenizer.eos_token_id not in eos_ids:
        generation.eos_token_id = [tokenizer.eos_token_id, *eos_ids] if eos_ids else tokenizer.eos_token_id


def prepare_base(params: BaseParams, seed: int, train_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Build or fetch the base model and save it (safetensors + tokenizer) to out_dir; returns the metrics."""
    import shutil

    started = time.perf_counter()
    pin_threads()
    quiet_library_output()
    log.info(describe_cpu_kernels())
    if params.model == "scratch":
        model, tokenizer, metrics = build_scratch(read_examples(train_path), params.scratch, seed)
    else:
        model, tokenizer = load_pretrained(params)
        complete_tokenizer(model, tokenizer)
        metrics = {
            "source": "local" if is_local_reference(params.model) else "hub",
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
        }
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a stale file (say, an old shard) must not survive into the new model
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics
