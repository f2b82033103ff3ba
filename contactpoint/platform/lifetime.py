"""A child process that ends with the process that started it."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent(sig: signal.Signals = signal.SIGTERM) -> str | None:
    """Have the kernel send this process `sig` when its parent ends, however it ends (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing is done). Strictly, when the parent's *thread* that started
    this process ends: start such children from a thread that lives as long as the parent (its
    main thread, its event loop's). Returns why the kernel refused, or None."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None
