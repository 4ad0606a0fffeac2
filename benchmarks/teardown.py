"""What every benchmark script does so that stopping it stops what it started (imported by the scripts beside it).

A script stopped by `timeout` or `kill` gets SIGTERM (SIGHUP when its terminal closes), whose default action ends
Python at once: no ``finally`` runs, so a stack, an emulator or a server it started is left running (on its ports,
with its memory). :func:`stop_on_signals` turns both into ``SystemExit``, so the ``finally`` blocks run as they do
on an error; ``subprocess.run`` kills its child on the way out too.

A child that is not in a process group of its own which a ``finally`` stops (``start_new_session=True`` and
``stop_group``) also gets :func:`die_with_parent` as its ``preexec_fn``: the kernel sends it SIGTERM when the
script dies, even by SIGKILL, where no ``finally`` can run. Linux's PR_SET_PDEATHSIG fires when the *thread* that
started the child ends, so such children are started from the main thread (all of them are).
"""

from __future__ import annotations

import ctypes
import os
import signal
from types import FrameType

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not between fork and exec
_prctl = _libc.prctl


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the shell's status for "killed by signum"


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit in the main thread, so the script's ``finally`` blocks still stop what
    it started (call it first thing in ``main``)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_exit)


_parent = os.getpid()


def die_with_parent() -> None:
    """``preexec_fn`` of a child: SIGTERM to it when this process dies (PR_SET_PDEATHSIG). If this process died
    before the call took effect, the child ends itself now."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != _parent:
        os.kill(os.getpid(), signal.SIGTERM)
