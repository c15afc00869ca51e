"""The GGUF files read back by llama.cpp itself (llama-cpp-python), next to the merged model on the test prompts.

Usage: python benchmarks/gguf_llama_cpp.py [--llama-python PYTHON] [--examples N]

The export stage reads each GGUF file back with transformers' GGUF loader; this runs the same comparison
through llama.cpp. llama-cpp-python compiles llama.cpp when installed (PyPI has no wheel for this
platform; about an hour on 2 cores), so it lives in an interpreter of its own: --llama-python names it
(default: $LLAMA_PYTHON, else this one). That interpreter needs only llama_cpp; this script runs its worker
part there and compares greedy answers: the share of prompts with the same answer, per file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(gguf: str, prompts_file: str, max_new_tokens: int) -> None:
    """Runs under the llama.cpp interpreter: greedy answers to each prompt, as JSON on stdout."""
    from llama_cpp import Llama

    model = Llama(model_path=gguf, n_ctx=512, n_threads=2, seed=0, verbose=False)
    answers = []
    for prompt in json.loads(Path(prompts_file).read_text(encoding="utf-8")):
        done = model.create_completion(prompt, max_tokens=max_new_tokens, temperature=0.0, top_k=1)
        answers.append(done["choices"][0]["text"].strip())
    print(json.dumps(answers, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-python", default=os.environ.get("LLAMA_PYTHON", sys.executable))
    parser.add_argument("--examples", type=int, default=0, help="test prompts to use (0: all)")
    parser.add_argument("--worker", nargs=3, metavar=("GGUF", "PROMPTS", "MAX_NEW_TOKENS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return

    from langfoundry.core.config import load_params
    from langfoundry.core.storage import read_jsonl
    from langfoundry.model.evaluation import chat_prompts, generate, load_base, load_tokenizer
    from langfoundry.model.progress import quiet_library_output

    quiet_library_output()
    params = load_params(REPO / "params.yaml")
    paths = params.paths.under(REPO)
    examples = read_jsonl(paths.split_file("test"))
    examples = examples[:args.examples] if args.examples else examples
    tokenizer = load_tokenizer(paths.merged)
    prompts = chat_prompts(tokenizer, examples)
    merged = generate(load_base(paths.merged), tokenizer, prompts, params.evaluate.batch_size,
                      params.evaluate.max_new_tokens, desc="merged")
    with tempfile.TemporaryDirectory() as folder:
        prompts_file = Path(folder) / "prompts.json"
        prompts_file.write_text(json.dumps(prompts, ensure_ascii=False), encoding="utf-8")
        for gguf in sorted(paths.gguf.glob("*.gguf")):
            done = subprocess.run([args.llama_python, __file__, "--worker", str(gguf), str(prompts_file),
                                   str(params.evaluate.max_new_tokens)], capture_output=True, text=True)
            if done.returncode != 0:
                reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
                sys.exit(f"{gguf.name}: llama.cpp failed: {reason}")
            answers = json.loads(done.stdout)
            same = sum(a == b for a, b in zip(answers, merged)) / len(merged)
            print(f"{gguf.name}: llama.cpp gives the merged model's greedy answer on {same:.1%} of {len(merged)} prompts")


if __name__ == "__main__":
    main()
