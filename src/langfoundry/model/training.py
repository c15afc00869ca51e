"""LoRA supervised fine-tuning of the base model on the chat examples (TRL's SFTTrainer over a PEFT adapter).

Each example becomes TRL's conversational prompt-completion form: the prompt is every turn before the last
assistant turn, the completion is that turn. With `completion_only_loss` TRL labels the prompt tokens -100,
so only the answer and the eos that closes it are learned: the model learns to answer and then stop.
Training curves go to DVCLive, progress to the console (model/progress.py). Checkpoints live beside the
output, outside DVC's (model/checkpoints.py): a run that was killed resumes from the last one, bit for bit
on CPU, and they are removed at the end; the adapter is written aside and renamed into place.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import resource
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langfoundry.core.config import TrainParams
from langfoundry.core.errors import UserError
from langfoundry.model.base import read_examples
from langfoundry.model.checkpoints import (
    checkpoint_dir_for,
    checkpoint_step,
    checkpoint_tokens,
    fingerprint,
    mean_train_loss,
    publish,
    reset_stale_checkpoints,
    restore_token_counter,
    resumable_checkpoint,
    staging_dir_for,
)
from langfoundry.model.curves import dvclive_callback
from langfoundry.model.determinism import describe_cpu_kernels, pin_threads, pinning_enabled
from langfoundry.model.presets import describe, resolve_preset
from langfoundry.model.progress import progress_callback, quiet_library_output
from langfoundry.model.vocab_extension import expose_output_bias, new_token_ids, trainable_token_indices

log = logging.getLogger(__name__)

# --- data ------------------------------------------------------------------------------------------------


def prompt_completion(example: dict[str, Any], where: str) -> dict[str, list[dict[str, str]]]:
    """Split a chat at its last assistant turn: everything before is the prompt, that turn the completion."""
    messages = [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
    if messages[-1]["role"] != "assistant":
        raise UserError(f"{where}: the last message must be the assistant's answer (found {messages[-1]['role']!r})")
    if len(messages) < 2:
        raise UserError(f"{where}: a chat needs a prompt before the assistant's answer")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def has_examples(path: str | Path) -> bool:
    """Whether a jsonl file exists with at least one line (an empty validation set turns evaluation off)."""
    path = Path(path)
    if not path.exists():
        return False
    with path.open(encoding="utf-8") as handle:
        return any(line.strip() for line in handle)


def load_sft_dataset(path: str | Path):
    """The examples of a processed jsonl file as a datasets.Dataset with only TRL's prompt/completion columns."""
    from datasets import Dataset

    rows = [prompt_completion(example, f"{path}:{number}") for number, example in enumerate(read_examples(path), 1)]
    return Dataset.from_list(rows)


# --- model -----------------------------------------------------------------------------------------------


def check_quantization(params: TrainParams) -> None:
    if params.quantization == "4bit":
        import torch

        if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("train.quantization=4bit needs a CUDA GPU and bitsandbytes; set train.quantization: none")


def load_base(base_dir: str | Path, params: TrainParams, trust_remote_code: bool = False):
    """The base model (4-bit for QLoRA, bf16 on a GPU that has it, else fp32) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = Path(base_dir)
    if not (base_dir / "config.json").exists():
        raise UserError(f"{base_dir}: no base model there; run the base stage first (dvc repro base)")
    tokenizer = AutoTokenizer.from_pretrained(base_dir, trust_remote_code=trust_remote_code)
    # safetensors only: a pickled checkpoint could run code when loaded
    options: dict[str, Any] = {"dtype": torch.float32, "trust_remote_code": trust_remote_code, "use_safetensors": True}
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        options["dtype"] = torch.bfloat16
    if params.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=options["dtype"],
        )
    model = AutoModelForCausalLM.from_pretrained(base_dir, **options)
    if params.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=params.activation_checkpointing)
    return model, tokenizer


def lora_config(params: TrainParams, model, new_tokens: Sequence[int] = ()):
    """The PEFT LoRA config; target modules that match no layer of the model are a UserError listing the choices.

    Tokens the base stage added to the vocabulary (new_tokens) get their embedding rows trained too.
    """
    import torch
    from peft import LoraConfig
    from transformers.pytorch_utils import Conv1D

    # leaf names of the layers LoRA can wrap (4-bit layers subclass nn.Linear; GPT-2 style models use Conv1D)
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, (torch.nn.Linear, Conv1D))}
    names.discard("lm_head")
    missing = [name for name in params.lora.target_modules if name not in names]
    if missing:
        raise UserError(
            f"params.yaml: train.lora.target_modules has {missing} which the base model does not have; "
            f"choose among {sorted(names)}"
        )
    return LoraConfig(
        r=params.lora.r,
        lora_alpha=params.lora.alpha,
        lora_dropout=params.lora.dropout,
        target_modules=list(params.lora.target_modules),
        trainable_token_indices=trainable_token_indices(model, new_tokens) if new_tokens else None,
        bias="none",
        task_type="CAUSAL_LM",
    )


# --- training --------------------------------------------------------------------------------------------


def logging_interval(eval_steps: int) -> int:
    """The largest divisor of eval_steps up to 10: every checkpoint (at eval_steps) then falls on a logged step,
    so a resumed run loses no loss sum that was still waiting to be logged."""
    return max(divisor for divisor in range(1, 11) if eval_steps % divisor == 0)


def sft_config(params: TrainParams, seed: int, checkpoint_dir: Path, has_eval: bool, use_cuda: bool, bf16: bool):
    from trl import SFTConfig

    early_stopping = has_eval and params.early_stopping_patience > 0
    return SFTConfig(
        output_dir=str(checkpoint_dir),
        seed=seed,
        data_seed=seed,
        full_determinism=not use_cuda,  # deterministic kernels on CPU; on GPU they cost too much speed
        use_cpu=not use_cuda,
        bf16=bf16,
        learning_rate=params.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=params.warmup_ratio,
        num_train_epochs=params.epochs,
        max_steps=params.max_steps,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation,
        activation_checkpointing=params.activation_checkpointing,
        max_length=params.max_length,
        packing=params.packing,
        completion_only_loss=params.completion_only_loss,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=params.eval_steps,
        logging_strategy="steps",
        logging_steps=logging_interval(params.eval_steps),
        # checkpoints to resume a killed run (with optimizer, scheduler and RNG states) and to reload the best
        save_strategy="steps",
        save_steps=params.eval_steps,
        save_total_limit=params.save_total_limit,
        save_only_model=False,
        restore_callback_states_from_checkpoint=True,  # early stopping's patience counter too
        load_best_model_at_end=early_stopping,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        include_num_input_tokens_seen="non_padding",
        report_to="none",  # curves go through our DVCLive callback
        dataloader_num_workers=0,
        disable_tqdm=True,  # progress_callback reports instead
        log_level="warning",
    )


def peak_memory_mb(use_cuda: bool) -> float:
    import torch

    if use_cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_trainer(
    params: TrainParams,
    seed: int,
    base_dir: str | Path,
    train_path: str | Path,
    val_path: str | Path | None,
    live_dir: str | Path,
    checkpoint_dir: str | Path,
    trust_remote_code: bool = False,
):
    """The SFTTrainer over a fresh LoRA adapter on the base model, with its datasets already tokenized and labelled."""
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    check_quantization(params)
    quiet_library_output()
    use_cuda = torch.cuda.is_available()
    train_set = load_sft_dataset(train_path)
    params = resolve_preset(params, len(train_set)).params  # what params.yaml leaves unset comes from the preset
    val_set = load_sft_dataset(val_path) if val_path is not None and has_examples(val_path) else None
    model, tokenizer = load_base(base_dir, params, trust_remote_code)
    bf16 = model.dtype == torch.bfloat16 or (params.quantization == "4bit" and torch.cuda.is_bf16_supported())
    config = sft_config(params, seed, Path(checkpoint_dir), val_set is not None, use_cuda, bf16)
    callbacks = [dvclive_callback(live_dir), progress_callback("train")]
    if config.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=params.early_stopping_patience))
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        peft_config=lora_config(params, model, new_token_ids(base_dir)),
        callbacks=callbacks,
    )
    for raw_printer in (PrinterCallback, ProgressCallback):  # they print the log dictionaries as they are
        trainer.remove_callback(raw_printer)
    expose_output_bias(trainer.model)
    return trainer


def make_adapter_files_reproducible(adapter_dir: Path) -> None:
    """Sort target_modules in adapter_config.json and drop the empty model card PEFT writes.

    PEFT keeps target_modules as a set, so the saved order follows string hashing and changes between runs.
    """
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    (adapter_dir / "README.md").unlink(missing_ok=True)


def is_main_process() -> bool:
    """Process zero under `accelerate launch` or torchrun (they set RANK), or the only process."""
    return os.environ.get("RANK", "0") == "0"


def save_adapter(trainer, out_dir: Path) -> None:
    """The adapter and tokenizer, written aside and renamed into place: a killed run leaves no half of one."""
    staging = staging_dir_for(out_dir)
    # the model's own save writes only the adapter (safetensors) and its config, not the pickled training arguments
    trainer.model.save_pretrained(staging)
    trainer.processing_class.save_pretrained(staging)
    make_adapter_files_reproducible(staging)
    publish(staging, out_dir)


def train_adapter(
    params: TrainParams,
    seed: int,
    base_dir: str | Path,
    train_path: str | Path,
    val_path: str | Path | None,
    out_dir: str | Path,
    live_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter on the base model, save it (with the tokenizer) to out_dir; returns the metrics.

    Checkpoints go to checkpoint_dir (default: a hidden sibling of out_dir); a run killed after one was
    written resumes from it when rerun with the same inputs.
    """
    import torch

    started = time.perf_counter()
    pin_threads()
    log.info(describe_cpu_kernels())
    out_dir = Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else checkpoint_dir_for(out_dir)
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.reset_peak_memory_stats()
    resolved = resolve_preset(params, len(read_examples(train_path)))
    params = resolved.params
    log.info(describe(resolved))
    settings = f"{params.model_dump_json()}\nseed={seed}\npinned={pinning_enabled()}\nremote_code={trust_remote_code}"
    stamp = fingerprint(settings, [path for path in (base_dir, train_path, val_path) if path is not None])
    if is_main_process():
        reset_stale_checkpoints(checkpoint_dir, stamp)
    trainer = build_trainer(params, seed, base_dir, train_path, val_path, live_dir, checkpoint_dir, trust_remote_code)
    trainer.accelerator.wait_for_everyone()
    resume_from = resumable_checkpoint(checkpoint_dir, stamp)
    start_step = checkpoint_step(resume_from) if resume_from is not None else 0
    tokens_before = checkpoint_tokens(resume_from)
    if resume_from is not None:
        log.info("train: resuming from step %d (%s)", start_step, resume_from)
    # the adapter starts as a no-op (LoRA's B is zero), so this is the base model's validation loss
    base_eval = trainer.evaluate() if trainer.eval_dataset is not None else {}
    if resume_from is not None:
        restore_token_counter(trainer, resume_from)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    final_eval = trainer.evaluate() if trainer.eval_dataset is not None else {}
    # under `accelerate launch` every process trains; one writes the files
    if trainer.is_world_process_zero():
        save_adapter(trainer, out_dir)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    metrics = training_metrics(trainer, result, base_eval, final_eval, start_step, tokens_before)
    metrics["effective"] = effective_values(resolved, trainer)
    metrics["wall_seconds"] = time.perf_counter() - started
    metrics["peak_memory_mb"] = peak_memory_mb(use_cuda)
    return metrics


def training_metrics(trainer, result, base_eval: dict, final_eval: dict, start_step: int,
                     tokens_before: int) -> dict[str, Any]:
    """The stage's metrics; a resumed run's match an uninterrupted one's but for the timings."""
    state = trainer.state
    train_losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    eval_losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry]
    runtime = result.metrics.get("train_runtime") or math.nan
    trainable, total = trainer.model.get_nb_trainable_parameters()
    return {
        "train_loss_final": train_losses[-1] if train_losses else result.training_loss,
        "train_loss_mean": mean_train_loss(state.log_history, result.training_loss, start_step, state.global_step),
        "val_loss_base": base_eval.get("eval_loss", math.nan),
        "val_loss_best": min(eval_losses) if eval_losses else math.nan,
        "val_loss_final": final_eval.get("eval_loss", math.nan),  # of the saved adapter (the best one with early stopping)
        "steps": state.global_step,
        "best_step": int(state.best_global_step or state.global_step),
        "stopped_early": state.global_step < state.max_steps,
        "train_examples": len(trainer.train_dataset),
        "val_examples": len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0,
        "train_tokens": state.num_input_tokens_seen,
        # the time includes the periodic evaluations
        "train_tokens_per_second": (state.num_input_tokens_seen - tokens_before) / runtime,
        "device": "cuda" if trainer.args.device.type == "cuda" else "cpu",
        "main_process": trainer.is_world_process_zero(),
        "trainable_parameters": trainable,
        "total_parameters": total,
    }


def effective_values(resolved, trainer) -> dict[str, Any]:
    """The training values in force (params.yaml's, completed by the preset) for metrics/train.json."""
    params = resolved.params
    return {
        "preset": resolved.preset,
        "from_preset": ",".join(resolved.from_preset) or "none",  # the others were set explicitly
        "learning_rate": params.learning_rate,
        "lora_r": params.lora.r,
        "lora_alpha": params.lora.alpha,
        "lora_dropout": params.lora.dropout,
        "batch_size": params.batch_size * params.gradient_accumulation,
        "per_device_batch_size": params.batch_size,
        "gradient_accumulation": params.gradient_accumulation,
        "epochs_planned": params.epochs,
        "max_length": params.max_length,
        "epochs": trainer.state.epoch,
        "quantization": params.quantization,
        "bf16": bool(trainer.args.bf16),
    }
