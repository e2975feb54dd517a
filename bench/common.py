"""Shared bench helpers: run a command in a subprocess and measure its wall time and peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Measure:
    """Wall seconds and peak resident memory (MiB) of one child process."""

    name: str
    seconds: float
    peak_mib: float


def measure(name: str, argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Measure:
    """Run argv to completion; peak RSS comes from wait4 of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}: {' '.join(argv)}")
    return Measure(name, seconds, usage.ru_maxrss / 1024)


def python_script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def print_table(rows: list[Measure], baseline: str) -> None:
    base = next(r for r in rows if r.name == baseline)
    print(f"{'variant':<28} {'seconds':>9} {'vs ' + baseline:>16} {'peak MiB':>10}")
    for row in rows:
        print(f"{row.name:<28} {row.seconds:>9.2f} {row.seconds / base.seconds:>15.2f}x {row.peak_mib:>10.0f}")
