"""The models a server answers with: where a name leads (registry stage or folder), loading, generating.

A stage name ("prod", "staging") is resolved by the model registry (langfoundry.release.registry) when
it is installed; a folder is served as it is, its version being the folder's name and a short hash of
its config.json. A model generates under its own lock, since torch's generate is not safe to run twice
at once on one model; the tokenizer has a lock of its own, so checking a prompt's length never waits
for another request's generation.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from langfoundry.core.errors import UserError

log = logging.getLogger(__name__)

REGISTRY_MODULE = "langfoundry.release.registry"


@dataclass(frozen=True)
class ResolvedModel:
    version: str
    path: Path


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop sequence) or "length" (max_tokens reached)
    seconds: float


class PromptError(ValueError):
    """The chat template refused the conversation (a role order or role the model does not take)."""


def folder_version(path: Path) -> str:
    """A model folder's version: its name and the first 8 hex digits of sha256(config.json)."""
    config = path / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:8] if config.is_file() else "noconfig"
    return f"{path.name}-{digest}"


def _registry_resolve():
    try:
        found = importlib.util.find_spec(REGISTRY_MODULE)
    except ModuleNotFoundError:  # the langfoundry.release package itself is absent
        found = None
    return importlib.import_module(REGISTRY_MODULE).resolve if found else None


def resolve_model(reference: str, key: str, root: Path | str = ".") -> ResolvedModel:
    """The version and folder a registry stage or a folder path (params key `key`) stands for."""
    resolve = _registry_resolve()
    if resolve is not None:
        resolved = resolve(reference, root=root)
        return ResolvedModel(version=str(resolved.version), path=Path(resolved.path))
    path = Path(reference)
    if not path.is_dir():
        raise UserError(f"{key}: {reference!r} is not a model folder, and registry stages need {REGISTRY_MODULE}, which "
                        f"is not installed here; give a folder (e.g. --{key.split('.')[-1]} models/merged)")
    return ResolvedModel(version=folder_version(path), path=path)


def check_model_folder(path: Path, key: str) -> None:
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise UserError(f"{key}: {path} is a LoRA adapter, not a whole model; serve the merged model "
                        f"(dvc repro export writes models/merged)")
    if not (path / "config.json").is_file():
        raise UserError(f"{key}: {path} has no config.json; give a Hugging Face model folder such as models/merged")


def context_length(config, tokenizer) -> int | None:
    """The most tokens the model attends to, from its config (or a tokenizer's real limit), else None."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**7 else None  # tokenizers say 1e30 for "unknown"


class ServedModel:
    """One loaded model and its tokenizer; thread-safe."""

    def __init__(self, version: str, path: Path, model, tokenizer):
        self.version, self.path, self.model, self.tokenizer = version, path, model, tokenizer
        self.context_length = context_length(model.config, tokenizer)
        self.stop_ids = _end_of_turn_ids(model, tokenizer)
        self._generate_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()  # the fast tokenizer's Rust state is not shared across threads

    @classmethod
    def load(cls, resolved: ResolvedModel, key: str) -> ServedModel:
        check_model_folder(resolved.path, key)
        from langfoundry.model.evaluation import load_base, load_tokenizer
        from langfoundry.model.progress import quiet_library_output

        quiet_library_output()  # no loading bars in the server's log
        started = time.perf_counter()
        tokenizer = load_tokenizer(resolved.path)
        model = load_base(resolved.path)
        log.info("%s: loaded %s from %s in %.1f s", key, resolved.version, resolved.path, time.perf_counter() - started)
        return cls(resolved.version, resolved.path, model, tokenizer)

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        """The conversation in the model's chat template, ready for the assistant's turn, as token ids."""
        from jinja2 import TemplateError

        with self._tokenizer_lock:
            try:
                text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            except TemplateError as err:
                raise PromptError(f"the model's chat template refuses these messages: {err}") from err
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0, top_p: float | None = None,
                 stop: list[str] | None = None, seed: int | None = None) -> Generation:
        """The model's answer to an encoded prompt: greedy at temperature 0, else sampled."""
        import torch
        from transformers import GenerationConfig

        sampled = temperature > 0
        config = GenerationConfig(do_sample=sampled, temperature=temperature if sampled else None,
                                  top_p=top_p if sampled else None, top_k=None, max_new_tokens=max_new_tokens,
                                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids,
                                  stop_strings=stop or None)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([prompt_ids], device=device)
        started = time.perf_counter()
        with self._generate_lock, torch.inference_mode():
            if sampled and seed is not None:
                torch.manual_seed(seed)  # best effort, as OpenAI's seed: other models sample concurrently
            output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                         generation_config=config, tokenizer=self.tokenizer if stop else None)
        seconds = time.perf_counter() - started
        new_ids = output[0, len(prompt_ids):].tolist()
        ended = bool(new_ids) and new_ids[-1] in self.stop_ids
        with self._tokenizer_lock:
            text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, stop or [])
        finish = "stop" if ended or stopped or len(new_ids) < max_new_tokens else "length"
        return Generation(text.strip(), len(prompt_ids), len(new_ids), finish, seconds)


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """text up to the first of the stop sequences (which is left out), and whether one was found."""
    cuts = [text.find(stop) for stop in stops if stop and stop in text]
    return (text[:min(cuts)], True) if cuts else (text, False)


def _end_of_turn_ids(model, tokenizer) -> list[int]:
    """The tokenizer's eos plus whatever the model's generation config ends a turn with."""
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return sorted({token for token in [tokenizer.eos_token_id, *configured] if token is not None})
