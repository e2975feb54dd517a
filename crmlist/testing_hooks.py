"""Test-only hooks: stop a real crmlist process at a named point so a test can signal or kill it there.

Set CRMLIST_TEST_PAUSE=NAME (e.g. "run:after-manifest") and the process, on reaching `pause_point(NAME)`,
writes one line "crmlist: test pause at NAME (PID n)" to stderr and sleeps CRMLIST_TEST_PAUSE_SECONDS
(default 60). Nothing happens when the variable is unset, which is always the case outside the tests.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "CRMLIST_TEST_PAUSE"


def pause_point(name: str) -> None:
    """Sleep here when CRMLIST_TEST_PAUSE names this point; a no-op otherwise."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    # The one line a test waits for; a test hook, so it may write to stderr.
    sys.stderr.write(f"crmlist: test pause at {name} (PID {os.getpid()})\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get("CRMLIST_TEST_PAUSE_SECONDS", "60")))
