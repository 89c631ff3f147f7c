"""Where the CPU went during a timed window, from /proc (Linux): the whole machine, and per role of our processes.

A benchmark that wants to say "nothing else was running" or "the bulk jobs really were busy" takes a ``CpuSample``
before and after and reads ``cpu_usage(before, after)``: average cores busy over the window, machine-wide and per
role (``roles`` maps a role name to a predicate on a process's command line), plus ``outside`` = the machine's busy
cores less every process of ``groups`` (process group ids: our stack), i.e. whatever else this machine was doing.
A process that starts inside the window counts whole; one that ends inside it is missed (and shows up in
``outside``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    at: float
    machine_busy: float  # seconds of CPU busy, all cores together, since boot
    procs: dict[int, tuple[int, str, float]] = field(default_factory=dict)  # pid -> (group, cmdline, cpu seconds)


def _machine_busy() -> float:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS  # user nice system idle iowait irq softirq steal


def _proc(pid: int) -> tuple[int, str, float] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:  # gone meanwhile
        return None
    rest = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is rest[0]
    group, utime, stime = int(rest[2]), int(rest[11]), int(rest[12])
    return group, cmdline, (utime + stime) / TICKS


def cpu_sample(groups: Iterable[int] | None) -> CpuSample:
    """The machine's busy time and, for every process in one of the process ``groups`` (None: every process on the
    machine, the system's PostgreSQL included), its CPU time so far."""
    wanted = None if groups is None else set(groups)
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _proc(int(name))
            if info is not None and (wanted is None or info[0] in wanted):
                procs[int(name)] = info
    return CpuSample(at=time.monotonic(), machine_busy=_machine_busy(), procs=procs)


def cpu_usage(before: CpuSample, after: CpuSample,
              roles: Mapping[str, Callable[[str], bool]]) -> dict[str, float]:
    """Average cores busy between the samples: ``machine``, ``ours``, ``outside`` and one entry per role."""
    seconds = max(after.at - before.at, 1e-6)
    usage = {role: 0.0 for role in roles}
    ours = 0.0
    for pid, (_, cmdline, cpu) in after.procs.items():
        used = max(cpu - (before.procs[pid][2] if pid in before.procs else 0.0), 0.0)
        ours += used
        for role, matches in roles.items():
            if matches(cmdline):
                usage[role] += used
                break
    machine = max(after.machine_busy - before.machine_busy, 0.0)
    result = {"machine": machine / seconds, "ours": ours / seconds, "outside": max(machine - ours, 0.0) / seconds}
    result.update({role: used / seconds for role, used in usage.items()})
    return {k: round(v, 2) for k, v in result.items()}
