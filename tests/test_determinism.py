"""The same model bytes whatever kernels the CPU offers, and training output a person can read in a log.

Another CPU is imitated on this one: a process whose environment asks PyTorch for its baseline kernels instead
of AVX2 (ATEN_CPU_CAPABILITY=default; even seeded `randn` then differs), for MKL's automatic code branch and
oneDNN's SSE4.1 kernels, and one thread. With the project's pinning that process must give the bytes of a
plain run; with the pinning turned off (LANGFOUNDRY_NATIVE_KERNELS=1) the same environment must not, which
shows that the pinning, not luck, makes them equal.
"""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import pytest
from tiny_models import python_command, subprocess_env

from langfoundry.model.determinism import OPT_OUT, PINNED_ENVIRONMENT

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or "avx2" not in Path("/proc/cpuinfo").read_text(),
    reason="kernel pinning concerns x86-64 CPUs with AVX2",
)

OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO", "ONEDNN_MAX_CPU_ISA": "SSE41",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# a plain shell: none of the kernel variables (the test process itself has the pinned ones)
PLAIN = {name: "" for name in [*PINNED_ENVIRONMENT, OPT_OUT]}
# (environment, whole: base and adapter, or only the base, which is enough to tell kernels apart)
RUNS = {
    "pinned": (PLAIN, True),
    "pinned_on_other_cpu": ({**PLAIN, **OTHER_CPU}, True),
    "native_on_other_cpu": ({**PLAIN, **OTHER_CPU, OPT_OUT: "1"}, False),
}
BASE, ADAPTER = "base/model.safetensors", "adapter/adapter_model.safetensors"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Each run's folder and its output (stdout and stderr together, as a log sees them: not a terminal).

    The runs go side by side: they spend most of their time importing libraries, one core each.
    """
    started = {}
    for name, (env, whole) in RUNS.items():
        root = tmp_path_factory.mktemp(name)
        if whole:
            statement = (f"tiny_models.run_tiny_pipeline(Path({str(root)!r}), "
                         "tiny_models.TINY_TRAIN.model_copy(update={'max_steps': 4, 'eval_steps': 2}), steps=8)")
        else:
            statement = f"root = Path({str(root)!r}); tiny_models.write_examples(root); " \
                        "tiny_models.build_tiny_base(root / 'base', root / 'train.jsonl', steps=8)"
        started[name] = (root, subprocess.Popen(python_command(statement), env=subprocess_env(**env), text=True,
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    results = {}
    for name, (root, process) in started.items():
        output = process.communicate()[0]
        assert process.returncode == 0, f"{name} failed:\n{output[-3000:]}"
        results[name] = (root, output)
    return results


def test_pinned_kernels_give_the_same_bytes_on_another_cpu(runs) -> None:
    (pinned, pinned_log), (other, other_log) = runs["pinned"], runs["pinned_on_other_cpu"]
    assert "CPU kernels: pinned (AVX2" in pinned_log and "CPU kernels: pinned (AVX2" in other_log
    for name in (BASE, ADAPTER):
        assert (pinned / name).read_bytes() == (other / name).read_bytes(), name


def test_without_the_pinning_the_other_cpu_gives_other_bytes(runs) -> None:
    (pinned, _), (native, native_log) = runs["pinned"], runs["native_on_other_cpu"]
    assert "CPU kernels: the machine's own (DEFAULT" in native_log, "the imitated CPU took effect"
    assert (pinned / BASE).read_bytes() != (native / BASE).read_bytes()


def test_training_prints_readable_progress_lines_when_not_on_a_terminal(runs) -> None:
    _, output = runs["pinned"]
    assert "\r" not in output, "no carriage-return progress bars in a log"
    assert "{'loss'" not in output and "{'eval_loss'" not in output, "no raw log dictionaries"
    assert "it/s]" not in output, "no library progress bars (loading weights, tokenizing)"
    numbers = r"loss \d+\.\d{4}  [\d,]+ tokens/s  elapsed \d+:\d\d  left \d+:\d\d"
    pretrain = re.findall(rf"^pretrain step (\d+)/8 \(\d+%\)  {numbers}$", output, re.MULTILINE)
    train = re.findall(rf"^train step (\d+)/4 \(\d+%\)  {numbers}$", output, re.MULTILINE)
    assert pretrain and pretrain[-1] == "8", output
    assert train and train[-1] == "4", output
    assert re.search(r"^train step 2: val loss \d+\.\d{4}$", output, re.MULTILINE), output
