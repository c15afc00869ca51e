"""LoRA training throughput on a GPU: a 0.5B-parameter Qwen2 through the project's training path, padded and
packed, against a plain trl SFTTrainer + peft LoraConfig run, all in one call.

Usage:
    .venv/bin/python benchmarks/bench_gpu.py                                # CUDA GPU; H100 SXM bf16 peak (989 TFLOPs)
    .venv/bin/python benchmarks/bench_gpu.py --peak-tflops 989 --steps 40 --warmup-steps 5 --batch-size 8
    .venv/bin/python benchmarks/bench_gpu.py --tiny                         # CPU smoke test: tiny Qwen2, seq len 64

Model: Qwen2ForCausalLM built from a Qwen2Config of the Qwen2-0.5B shape (hidden 896, 24 layers, 14 attention
heads, 2 key/value heads, intermediate 4864, vocabulary 151,936, tied embeddings; about 494M parameters), random
weights, bf16 on a GPU as the train stage loads a base model there. Nothing is downloaded.

Data: synthetic. Random token ids (not text: the work of a dense model does not depend on the ids), lengths
drawn uniformly from [seq_len / 8, seq_len] with a fixed seed, the first half of each example the prompt, the
rest the completion (a `completion_mask`, as TRL's tokenisation of a prompt-completion example leaves it).
Every run trains on the same examples; max_length is the sequence length.

Runs, one after another with a fresh model each:
  1. langfoundry, padded: langfoundry.model.training.build_trainer, the train stage's own trainer (its SFTConfig,
     LoRA config, callbacks), with params.yaml's train section except max_length (--seq-len), batch_size
     (--batch-size), gradient_accumulation 1, max_steps (--steps) and packing false. Only where the model and
     the examples come from is replaced (training.load_base and training.load_sft_dataset).
  2. langfoundry, packed: the same with packing true (TRL's "bfd" packing, which makes batches padding-free).
  3. trl + peft baseline: SFTTrainer(SFTConfig(...), peft_config=LoraConfig(...)) with TRL's defaults (no
     packing; activation checkpointing on) except what defines the workload: max_length, batch size, steps,
     learning rate, precision; LoRA r, alpha and dropout from params.yaml, target_modules="all-linear".

Figures, over the steps after --warmup-steps (CUDA synchronised at each step end):
  real tokens/s: non-padding tokens (bench_training.count_batch_tokens: the attention mask's sum, or every
    position of a padding-free packed batch); total tokens/s counts padding too.
  MFU = real tokens/s x FLOPs per token / (--peak-tflops x 1e12), two ways, N = every parameter of the model
    with its adapter (tied embeddings once: the input lookup is free, the output projection costs 2N's share):
      MFU (6N): FLOPs per token = 6N, the standard dense-training count (forward 2N, backward 4N: gradients
        of the activations 2N and of the weights 2N), comparable with published MFU figures;
      MFU (LoRA): FLOPs per token = 4N + 2N_trainable: a frozen weight needs no weight gradient, so backward
        is 2N for the activations plus 2N_trainable for the adapter weights.
    Neither counts attention's sequence-length term (12 x layers x hidden x context per token, about 9% of 6N
    here at 1024), the recomputation of activation checkpointing, or padding: padded runs do work MFU ignores.
    Both count the output projection (2 x hidden x vocabulary, a quarter of the forward here) for every token,
    as MFU counts the model's FLOPs, not the kernels': TRL's fused LM head projects only the positions that
    have a label, so with completion-only loss (all three runs) the prompt tokens skip it.
  peak memory: torch.cuda.max_memory_allocated during the run (reset before it).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import StepProbe, throughput  # noqa: E402

# Qwen2-0.5B's shape (its config.json), for Qwen2Config
QWEN2_05B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                 intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=32768,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
# about 150,000 parameters: seconds on a CPU
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
            vocab_size=1024, tie_word_embeddings=True, max_position_embeddings=256)
SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")  # ids 0, 1, 2; the synthetic ids start above them
H100_SXM_BF16_TFLOPS = 989.0  # dense bf16 tensor-core peak, H100 SXM data sheet


# --- FLOPs --------------------------------------------------------------------------------------------------


def flops_per_token(total_params: int, trainable_params: int, formula: str) -> float:
    """Training FLOPs per token: "6n" (dense forward 2N + backward 4N) or "lora" (4N + 2N_trainable)."""
    if formula == "6n":
        return 6.0 * total_params
    if formula == "lora":
        return 4.0 * total_params + 2.0 * trainable_params
    raise ValueError(f"unknown formula {formula!r}; use 6n or lora")


def model_flops_utilization(tokens_per_second: float, flops_per_token_: float, peak_tflops: float) -> float:
    """Achieved model FLOP/s as a share of the accelerator's peak."""
    return tokens_per_second * flops_per_token_ / (peak_tflops * 1e12)


# --- model and data -----------------------------------------------------------------------------------------


def qwen2_config(tiny: bool):
    from transformers import Qwen2Config

    return Qwen2Config(**(TINY if tiny else QWEN2_05B), bos_token_id=1, eos_token_id=1, pad_token_id=0)


def build_model(config, seed: int, use_cuda: bool, attn_implementation: str):
    """Random weights from the config, in the dtype training.load_base would choose on this device."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    bf16 = use_cuda and torch.cuda.is_bf16_supported()
    torch.manual_seed(seed)
    device = torch.device("cuda" if use_cuda else "cpu")
    with device:  # initialise on the GPU: 0.5B parameters on a CPU take far longer
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if bf16 else torch.float32,
                                                 attn_implementation=attn_implementation)
    model.generation_config = GenerationConfig(eos_token_id=1, pad_token_id=0)
    return model


def placeholder_tokenizer():
    """A tokenizer that knows only pad, eos and unk: the examples come tokenized, SFTTrainer needs the pad id."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({token: index for index, token in enumerate(SPECIAL_TOKENS)}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def synthetic_examples(count: int, seq_len: int, vocab_size: int, seed: int) -> dict[str, list[list[int]]]:
    """Tokenized prompt-completion examples: random ids, lengths uniform in [seq_len // 8, seq_len], half prompt."""
    rng = random.Random(seed)
    first_id = len(SPECIAL_TOKENS)
    input_ids, completion_mask = [], []
    for _ in range(count):
        length = rng.randint(max(2, seq_len // 8), seq_len)
        input_ids.append([rng.randrange(first_id, vocab_size) for _ in range(length)])
        prompt = length // 2
        completion_mask.append([0] * prompt + [1] * (length - prompt))
    return {"input_ids": input_ids, "completion_mask": completion_mask}


# --- the three runs -----------------------------------------------------------------------------------------


@dataclass
class Workload:
    seq_len: int
    batch_size: int
    steps: int
    warmup_steps: int
    seed: int
    use_cuda: bool
    attn_implementation: str


@contextlib.contextmanager
def project_inputs(model, tokenizer, dataset) -> Iterator[None]:
    """langfoundry.model.training with its model and examples replaced by ours, for the duration.

    build_trainer reads a base model from a folder and chat examples from jsonl; a random 0.5B model has no
    folder (saving and reloading 1 GB would time the disk) and random ids no text. Everything else is its own.
    """
    from langfoundry.model import training

    originals = training.load_base, training.load_sft_dataset
    training.load_base = lambda base_dir, params, trust_remote_code=False: (model, tokenizer)
    training.load_sft_dataset = lambda path: dataset
    try:
        yield
    finally:
        training.load_base, training.load_sft_dataset = originals


def project_trainer(model, tokenizer, dataset, work: Workload, packing: bool, workdir: Path):
    from langfoundry.core.config import load_params
    from langfoundry.model.training import build_trainer

    params = load_params(REPO / "params.yaml")
    train = params.train.model_copy(update={"packing": packing, "max_length": work.seq_len, "batch_size": work.batch_size,
                                            "gradient_accumulation": 1, "max_steps": work.steps})
    with project_inputs(model, tokenizer, dataset):
        return build_trainer(train, work.seed, base_dir=workdir / "no-base", train_path=workdir / "train.jsonl",
                             val_path=None, live_dir=workdir / "live", checkpoint_dir=workdir / "checkpoints")


def baseline_trainer(model, tokenizer, dataset, work: Workload, workdir: Path):
    """The plain recipe: SFTConfig and LoraConfig with their defaults but for the shared workload."""
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from langfoundry.core.config import load_params

    params = load_params(REPO / "params.yaml").train
    config = SFTConfig(
        output_dir=str(workdir / "checkpoints"),
        max_length=work.seq_len,
        per_device_train_batch_size=work.batch_size,
        max_steps=work.steps,
        # TRL's default (None) means completion-only loss for prompt-completion data; these examples come
        # tokenized, which TRL cannot tell apart from plain text, so the default is spelled out
        completion_only_loss=True,
        learning_rate=params.learning_rate or 2e-4,
        seed=work.seed,
        bf16=work.use_cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not work.use_cuda,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    lora = LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    return SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)


@dataclass
class RunFigures:
    name: str
    settings: str
    timed_steps: int
    seconds: float
    real_tokens_per_second: float
    total_tokens_per_second: float
    padding_share: float
    total_params: int
    trainable_params: int
    peak_memory_bytes: int | None


def steady_state(name: str, settings: str, probe: StepProbe, warmup_steps: int, trainer) -> RunFigures:
    """Throughput over the steps after the warm-up, from the probe's per-step tokens and end times."""
    rows = probe.rows()
    timed = [row for row in rows if row["step"] > warmup_steps]
    start = next((row["ended"] for row in rows if row["step"] == warmup_steps), probe.train_began)
    seconds = timed[-1]["ended"] - start if timed else float("nan")
    real = sum(row["real_tokens"] for row in timed)
    total = sum(row["total_tokens"] for row in timed)
    trainable, every = trainer.model.get_nb_trainable_parameters()
    return RunFigures(name, settings, len(timed), seconds, throughput(real, seconds), throughput(total, seconds),
                      1 - real / total if total else float("nan"), every, trainable, None)


def trainer_settings(trainer) -> str:
    """What distinguishes the runs, read from the trainer itself rather than from what was asked of it."""
    args = trainer.args
    return ", ".join([
        f"packing ({args.packing_strategy})" if args.packing else "no packing",
        "padding-free" if getattr(trainer, "padding_free", False) else "padded batches",
        f"activation checkpointing {'on' if args.activation_checkpointing else 'off'}",
        "bf16" if args.bf16 else "fp32",
    ])


def run_one(name: str, work: Workload, dataset, tiny: bool, workdir: Path, build) -> RunFigures:
    import torch

    tokenizer = placeholder_tokenizer()
    model = build_model(qwen2_config(tiny), work.seed, work.use_cuda, work.attn_implementation)
    if work.use_cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = build(model, tokenizer, dataset, workdir / name.replace(" ", "-").replace(",", ""))
    probe = StepProbe(synchronize=torch.cuda.synchronize if work.use_cuda else None)
    probe.attach(trainer)
    started = time.perf_counter()
    # the Trainer prints its logs to stdout when there is no terminal; stderr keeps stdout to the tables
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    print(f"{name}: {trainer.state.global_step} steps in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    figures = steady_state(name, trainer_settings(trainer), probe, work.warmup_steps, trainer)
    if work.use_cuda:
        figures.peak_memory_bytes = torch.cuda.max_memory_allocated()
    # free this run's model, optimizer state and activations before the next run measures its peak
    trainer.accelerator.free_memory()
    del trainer, model, probe
    gc.collect()
    if work.use_cuda:
        torch.cuda.empty_cache()
    return figures


def run_all(work: Workload, tiny: bool) -> list[RunFigures]:
    from datasets import Dataset

    config = qwen2_config(tiny)
    count = max(64, 2 * work.steps * work.batch_size)  # enough for every step even packed (~1.8 examples a row)
    dataset = Dataset.from_dict(synthetic_examples(count, work.seq_len, config.vocab_size, work.seed))
    runs = [
        ("langfoundry, padded", lambda model, tok, data, folder: project_trainer(model, tok, data, work, False, folder)),
        ("langfoundry, packed", lambda model, tok, data, folder: project_trainer(model, tok, data, work, True, folder)),
        ("trl + peft baseline", lambda model, tok, data, folder: baseline_trainer(model, tok, data, work, folder)),
    ]
    with tempfile.TemporaryDirectory(prefix="langfoundry-bench-gpu-") as folder:
        return [run_one(name, work, dataset, tiny, Path(folder), build) for name, build in runs]


# --- report -------------------------------------------------------------------------------------------------


def print_report(figures: Sequence[RunFigures], work: Workload, peak_tflops: float, device: str, tiny: bool) -> None:
    first = figures[0]
    shape = "tiny Qwen2 (smoke test)" if tiny else "Qwen2-0.5B shape"
    print(f"device: {device}; model: {shape}, random weights, {first.total_params:,} parameters with the adapter, "
          f"{first.trainable_params:,} trainable (LoRA); synthetic data: random token ids, lengths uniform in "
          f"[{max(2, work.seq_len // 8)}, {work.seq_len}]")
    print(f"seq len {work.seq_len}, batch size {work.batch_size}, {work.steps} steps of which the first "
          f"{work.warmup_steps} are warm-up (not timed); attention {work.attn_implementation}; peak {peak_tflops:g} TFLOPs")
    print("\n| run | settings | timed steps | s/step | real tokens/s | total tokens/s | padding | MFU (6N) | "
          "MFU (LoRA) | peak memory |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in figures:
        mfu = [model_flops_utilization(run.real_tokens_per_second, flops_per_token(run.total_params, run.trainable_params, f),
                                       peak_tflops) for f in ("6n", "lora")]
        memory = f"{run.peak_memory_bytes / 2**30:.1f} GiB" if run.peak_memory_bytes is not None else "n/a (CPU)"
        per_step = run.seconds / run.timed_steps if run.timed_steps else float("nan")
        print(f"| {run.name} | {run.settings} | {run.timed_steps} | {per_step:.3f} | {run.real_tokens_per_second:,.0f} | "
              f"{run.total_tokens_per_second:,.0f} | {run.padding_share:.1%} | {mfu[0]:.1%} | {mfu[1]:.1%} | {memory} |")
    print("\nMFU (6N): 6N FLOPs per real token; MFU (LoRA): 4N + 2N_trainable (no weight gradients for frozen weights); "
          "N counts every parameter, attention's context term and checkpointing recomputation are left out.")
    if tiny:
        print("--tiny: the MFU of a tiny model on a CPU against a GPU's peak means nothing; the run checks the script.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true",
                        help="a tiny Qwen2 config, seq len 64 and a few steps: a smoke test that runs on a CPU")
    parser.add_argument("--seq-len", type=int, help="max_length, the longest example (default 1024; 64 with --tiny)")
    parser.add_argument("--batch-size", type=int, help="per-device batch size of every run (default 8; 4 with --tiny)")
    parser.add_argument("--steps", type=int, help="optimizer steps of each run (default 40; 3 with --tiny)")
    parser.add_argument("--warmup-steps", type=int, help="first steps left out of the timing (default 5; 1 with --tiny)")
    parser.add_argument("--peak-tflops", type=float, default=H100_SXM_BF16_TFLOPS,
                        help=f"the accelerator's dense bf16 peak in TFLOPs, for MFU (default {H100_SXM_BF16_TFLOPS:g}: H100 SXM)")
    parser.add_argument("--attn-implementation", default="sdpa",
                        help="the model's attention kernels (default sdpa, as the train stage loads models)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    import torch

    use_cuda = torch.cuda.is_available()
    if not use_cuda and not args.tiny:
        print("error: bench_gpu.py needs a CUDA GPU for the 0.5B model; use --tiny for a CPU smoke test", file=sys.stderr)
        return 2
    defaults = (64, 4, 3, 1) if args.tiny else (1024, 8, 40, 5)
    work = Workload(seq_len=args.seq_len or defaults[0], batch_size=args.batch_size or defaults[1],
                    steps=args.steps or defaults[2],
                    warmup_steps=defaults[3] if args.warmup_steps is None else args.warmup_steps,
                    seed=args.seed, use_cuda=use_cuda, attn_implementation=args.attn_implementation)
    if work.warmup_steps >= work.steps:
        parser.error("--warmup-steps must be fewer than --steps")
    device = torch.cuda.get_device_name() if use_cuda else "CPU"
    figures = run_all(work, args.tiny)
    print_report(figures, work, args.peak_tflops, device, args.tiny)
    return 0


if __name__ == "__main__":
    sys.exit(main())
