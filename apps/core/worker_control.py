"""A remote-control command every worker answers: its queues and the device its tasks run on.

The status page broadcasts it with a one-second timeout. It runs in the worker's main process, which with the
prefork pool is the parent of the process that runs tasks, so it must not initialise CUDA (that would break the
forked children): it counts devices through NVML, as ``torch.cuda.device_count`` does, and names them the same way.
"""

from __future__ import annotations

import ctypes
import functools

from celery.worker.control import inspect_command

COMMAND = "ferplatform_worker_info"


def _nvml_device_name(index: int = 0) -> str | None:
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return None
        handle = ctypes.c_void_p()
        if nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
            return None
        name = ctypes.create_string_buffer(96)
        if nvml.nvmlDeviceGetName(handle, name, 96) != 0:
            return None
        return name.value.decode(errors="replace")
    except (OSError, AttributeError):
        return None


@functools.cache
def device_describe() -> str:
    """``CUDA: <device name>`` when this process would run tasks on a GPU, else ``CPU``."""
    import torch

    if torch.cuda.is_initialized():
        return f"CUDA: {torch.cuda.get_device_name()}"
    if torch.cuda.device_count() <= 0:  # NVML-based: does not initialise CUDA
        return "CPU"
    return f"CUDA: {_nvml_device_name() or 'device 0'}"


@inspect_command(name=COMMAND)
def ferplatform_worker_info(state) -> dict[str, object]:
    """Queues this worker consumes and the device its tasks use."""
    consumer = state.consumer
    queues = sorted(q.name for q in consumer.task_consumer.queues) if consumer.task_consumer else []
    pool = consumer.pool
    return {
        "queues": queues,
        "device": device_describe(),
        "pool": type(pool).__module__.rsplit(".", 1)[-1] if pool is not None else None,
        "concurrency": getattr(pool, "num_processes", None) or getattr(consumer.controller, "concurrency", None),
    }
