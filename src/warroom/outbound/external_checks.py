"""External go/no-go criteria: a command's exit status or an HTTP 200 (CI green, a load-test
report, a health endpoint), each bounded by its timeout. What they print is never kept: a
command's output or a page may carry credentials; only pass/fail and why in a few words."""

from __future__ import annotations

import asyncio
import contextlib

from warroom.core import secrets
from warroom.plan.go_no_go import External


async def run(check: External) -> tuple[bool, str]:
    """(passed, what was seen) of one external criterion."""
    if check.command is not None:
        return await _command(check.command, check.timeout)
    assert check.http is not None
    return await _http(check.http, check.timeout)


async def _command(argv: list[str], timeout: float) -> tuple[bool, str]:
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return False, f"could not start {argv[0]}: {exc.strerror or type(exc).__name__}"
    try:
        async with asyncio.timeout(timeout):
            code = await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False, f"no answer within {timeout:g}s (stopped)"
    return code == 0, f"exit status {code}"


async def _http(url: str, timeout: float) -> tuple[bool, str]:
    from warroom.outbound import http  # httpx only when a check is due

    try:
        async with http.client(timeout) as client:
            response = await http.request(client, "GET", url, timeout=timeout)
    except Exception as exc:  # any failure to get an answer is a failed criterion, said in words
        return False, secrets.redact(f"no answer: {type(exc).__name__}")
    return response.status_code == 200, f"HTTP {response.status_code}"
