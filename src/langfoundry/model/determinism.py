"""The same model bytes on every x86-64 CPU: pin the numerical kernels that libraries choose per machine.

PyTorch's vectorised ATen kernels follow the widest instruction set found (AVX-512 or AVX2; even seeded
`randn` changes with it), MKL picks its matrix-product code by CPU vendor and generation, oneDNN by ISA, and
the thread count splits every parallel reduction. Each choice changes rounding in the last bits, which
training amplifies into different losses and weights. The libraries read their choice from the environment
once, at their first kernel call, so `pin_cpu_kernels` runs when `langfoundry.model` is imported, before any
model code computes; setting LANGFOUNDRY_NATIVE_KERNELS=1 keeps each library's own (faster) choice instead.
The price is MKL's COMPATIBLE branch: on a 2-core AMD EPYC the default base stage took 134 s instead of 56 s,
the train stage about the same time (41 s), since its LoRA steps spend less of their time in matrix products.
"""

from __future__ import annotations

import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

OPT_OUT = "LANGFOUNDRY_NATIVE_KERNELS"
# a fixed count: the same reduction order on a 2-core laptop and a 64-core server
THREADS = 2
PINNED_ENVIRONMENT = {
    # every x86-64 CPU of the last decade has AVX2; an AVX-512 CPU would otherwise take its own kernels
    "ATEN_CPU_CAPABILITY": "avx2",
    # on AMD CPUs MKL ignores every fixed code branch but COMPATIBLE (AVX2 and the others fall back to
    # AUTO, which differs by machine), so COMPATIBLE is the one branch with equal results on Intel and AMD
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
}


def pinning_enabled() -> bool:
    """Whether to pin: on x86-64 (the kernels above exist there) unless LANGFOUNDRY_NATIVE_KERNELS=1."""
    return os.environ.get(OPT_OUT, "") != "1" and platform.machine().lower() in ("x86_64", "amd64")


def pin_cpu_kernels() -> None:
    """Set the kernel choices in the environment, overriding what the machine or its user set.

    The environment also reaches any process this one starts, so a stage run by a test pins the same way.
    """
    if not pinning_enabled():
        return
    os.environ.update(PINNED_ENVIRONMENT)
    if "torch" in sys.modules:  # imported first: torch read OMP_NUM_THREADS already, but not yet the rest
        pin_threads()


def pin_threads() -> None:
    """torch's thread count (and MKL's, which follows it): THREADS when pinning, else the cores this process
    may use (torch's own default counts the host's cores, more than a container gets)."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    wanted = THREADS if pinning_enabled() else usable
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def describe_cpu_kernels() -> str:
    """One line naming the kernels in force, for the log of a model stage."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if not pinning_enabled():
        return f"CPU kernels: the machine's own ({capability}, {torch.get_num_threads()} threads; {OPT_OUT}=1)"
    wanted = PINNED_ENVIRONMENT["ATEN_CPU_CAPABILITY"].upper()
    if capability != wanted:
        # torch computed before pinning, or the CPU lacks AVX2: the bytes may differ from other machines
        log.warning("CPU kernels: %s instead of %s; import langfoundry.model before running torch code", capability, wanted)
    return f"CPU kernels: pinned ({capability}, MKL {PINNED_ENVIRONMENT['MKL_CBWR']}, {torch.get_num_threads()} threads)"
