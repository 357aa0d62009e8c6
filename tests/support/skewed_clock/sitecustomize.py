"""Test-only: this process's wall clock is WARROOM_TEST_CLOCK_OFFSET seconds off, as another host's can be.

Put on a client's PYTHONPATH by tests/store/test_clock_skew.py (Python imports `sitecustomize`
at start-up). Only `time.time()` moves, which is what a skewed host's wall clock changes for
warroom; the monotonic clock stays the host's, as it does on a real host.

Why not libfaketime: with `FAKETIME=+30s FAKETIME_DONT_FAKE_MONOTONIC=1` (and +5s, -60s) Python's
`time.sleep` fails with EINVAL on some calls and not others (its clock_nanosleep with an absolute
monotonic deadline is rewritten by the library), so a faked client dies at random, not of skew.
"""

import os
import time

_OFFSET = float(os.environ.get("WARROOM_TEST_CLOCK_OFFSET") or 0)
if _OFFSET:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _OFFSET
    time.time_ns = lambda: _time_ns() + int(_OFFSET * 1e9)
