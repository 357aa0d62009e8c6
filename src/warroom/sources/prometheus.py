"""The Prometheus source: instant queries each tick, range queries to backfill sparklines.

Anything speaking the Prometheus HTTP API works (Prometheus, Thanos, Mimir,
VictoriaMetrics). prometheus-api-client uses requests, which blocks, so every call runs
in this source's own daemon worker threads; the event loop (and the UI) never waits on
the network, and the configured timeout bounds each whole request (see transport.py).

Failures never raise: they become Readings whose detail says what went wrong in words
a launch team can act on, with every secret redacted. After a server-level failure the
source backs off (1 s, 2 s, 4 s … up to 16 s) and answers from memory meanwhile, then
lets exactly one probe through; when that succeeds, every query resumes.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
import re
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from warroom.core import secrets
from warroom.outbound.retry import Backoff
from warroom.plan.sources import PrometheusSourceConfig
from warroom.sources.base import Reading, Source, SourceContext
from warroom.sources.transport import DaemonPool, GuardedSession

log = logging.getLogger(__name__)

BACKOFF = Backoff(initial=1.0, cap=16.0)
# A dedicated pool: the default executor is small on a 2-CPU bastion and is shared with
# flag writes, which a slow Prometheus must never starve during a rollback.
WORKERS = 16
# No retries inside requests: our own backoff decides when to ask again.
NO_RETRY = Retry(0)

# Who should wait after a failure: the whole server, only this (slow) query, or nobody
# (the query itself is wrong; asking again costs the server nothing).
Scope = Literal["server", "slow", "query"]


class _Backoff:
    """Bounded exponential backoff; a round of concurrent failures counts once."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        self.reason = ""

    def waiting(self, now: float) -> str | None:
        if self.failures and now < self.retry_at:
            return f"{self.reason}; retrying in {math.ceil(self.retry_at - now)}s"
        return None

    def failed(self, reason: str, now: float) -> None:
        self.reason = reason
        if self.failures and now < self.retry_at:
            return  # another query of the same round already counted this outage
        self.failures += 1
        self.retry_at = now + BACKOFF.delay(self.failures)


class _Failure(Exception):
    def __init__(self, detail: str, scope: Scope):
        super().__init__(detail)
        self.detail = detail
        self.scope = scope


# ---------------------------------------------------------------- answers → Readings

def _number(text: Any) -> float | str:
    """A sample value, or the name of why it is not a usable number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return f"not a number: {str(text)[:40]!r}"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def _short(query: str, limit: int = 80) -> str:
    query = " ".join(query.split())
    return query if len(query) <= limit else query[: limit - 1] + "…"


def interpret(result: Any, query: str, series_label: str | None = None) -> Reading:
    """Turn `data.result` of an instant query into a Reading.

    With `series_label`, several series are shown per label value and the Reading's
    value is the largest of them: the worst case for the common `above` guardrails
    (error rate, latency, CPU). For a `below` threshold, aggregate with min() instead.
    """
    if not isinstance(result, list):
        raise _Failure("the answer is not a Prometheus query result (data.result is not a list)", "server")
    if len(result) == 2 and not isinstance(result[0], dict):
        # resultType scalar (or string): [timestamp, "value"]
        value = _number(result[1])
        return Reading.ok(value) if isinstance(value, float) else Reading.invalid(value)
    if not result:
        return Reading.nodata("no series matched (empty result)")
    if not all(isinstance(s, dict) for s in result):
        raise _Failure("the answer is not a Prometheus query result", "server")
    if "values" in result[0]:
        return Reading.error(
            f"`{_short(query)}` selects a range of samples; wrap it in a function such as rate(…) or avg_over_time(…)"
        )
    if len(result) == 1 and series_label is None:
        value = _number((result[0].get("value") or [None, None])[1])
        return Reading.ok(value) if isinstance(value, float) else Reading.invalid(value)
    if series_label is None:
        # Suggest grouping by a label that tells the series apart (pod, not job).
        names = sorted({k for s in result for k in s.get("metric", {}) if k != "__name__"})
        varying = [k for k in names if len({s.get("metric", {}).get(k) for s in result}) > 1]
        hint = f"max by ({varying[0]}) (…)" if varying else "max(…)"
        return Reading.error(
            f"`{_short(query)}` returned {len(result)} series where one was expected; "
            f"aggregate it, e.g. sum(…) or {hint}, or set the pane's series_label"
        )
    pairs: list[tuple[str, float]] = []
    bad: list[str] = []
    for s in result:
        name = s.get("metric", {}).get(series_label, f"(no {series_label})")
        value = _number((s.get("value") or [None, None])[1])
        if isinstance(value, float):
            pairs.append((name, value))
        else:
            bad.append(value)
    if not pairs:
        return Reading.invalid(bad[0])
    pairs.sort()
    return Reading.ok(max(v for _, v in pairs), series=tuple(pairs))


def _range_points(result: Any) -> list[tuple[float, float]]:
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], dict):
        return []  # no data, or several series: the live query will say why
    points = []
    for point in result[0].get("values") or []:
        if not (isinstance(point, (list, tuple)) and len(point) == 2):
            continue  # a malformed point: history is a nicety, the live query says what is wrong
        ts, value = _number(point[0]), _number(point[1])
        if isinstance(ts, float) and isinstance(value, float):
            points.append((ts, value))
    return points


# ---------------------------------------------------------------- failures → words

_API_ERROR = re.compile(r"^HTTP Status Code (\d+) \((b(['\"]).*\3)\)$", re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
_CERT = re.compile(r"certificate verify failed: ([^'\"(]+)")


def _body_summary(body: str) -> str:
    text = body.strip()
    if text.startswith("<"):
        title = _TITLE.search(text)
        named = f" ({' '.join(title.group(1).split())[:60]})" if title and title.group(1).strip() else ""
        return f"an HTML page{named}, not the Prometheus API (check the url: a login page, a proxy or the wrong port?)"
    if not text:
        return "an empty body, not the Prometheus API"
    try:
        json.loads(text)
        kind = "JSON that is not a Prometheus API answer"
    except ValueError:
        kind = "not JSON"
    return f"{kind}: {' '.join(text.split())[:80]!r}"


def _http_failure(status: int, body: str) -> _Failure:
    """`body` is redacted already: what is cut from it here must not cut a secret in two."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    head = f"HTTP {status} {phrase}"
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("status") == "error" and payload.get("error"):
        error_type, error = payload.get("errorType", "error"), secrets.excerpt(str(payload["error"]))
        if status in (400, 422):
            return _Failure(f"Prometheus rejected the query ({error_type}): {error}", "query")
        return _Failure(f"{head} ({error_type}): {error}", "slow" if error_type == "timeout" else "server")
    hints = {401: "check the source's auth", 403: "check the source's auth", 404: "is the url the server's base URL, without /api/v1?"}
    # A proxy or gateway in front of Prometheus often says why in a JSON `error`/`message`.
    said = next((payload[k] for k in ("error", "message") if isinstance(payload, dict) and isinstance(payload.get(k), str)), "")
    reason = hints.get(status) or " ".join(said.split())[:160] or _body_summary(body)
    return _Failure(f"{head}: {reason}", "server")


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    cert = _CERT.search(text)
    if cert:
        return f"TLS certificate verify failed: {cert.group(1).strip()} (set tls.ca_bundle, or tls.insecure_skip_verify to opt out)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(1).strip().lower()
    if "RemoteDisconnected" in text or "closed connection" in text:
        return "the server closed the connection without answering"
    if "resolve" in text.lower():
        return "host name not found"
    return "connection failed"


def classify(exc: BaseException, host: str, timeout: float) -> _Failure:
    """Words and backoff scope for anything a call can raise."""
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, PrometheusApiClientException):
        match = _API_ERROR.match(str(exc))
        if match:
            try:
                body = ast.literal_eval(match.group(2)).decode("utf-8", "replace")
            except (ValueError, SyntaxError):
                body = ""
            return _http_failure(int(match.group(1)), secrets.redact(body))
        return _Failure(f"HTTP error: {secrets.excerpt(str(exc), 120)}", "server")
    # Without retries urllib3 reports a read timeout as a ConnectionError "Read timed out".
    if isinstance(exc, (asyncio.TimeoutError, requests.exceptions.Timeout)) or "timed out" in str(exc):
        return _Failure(f"timeout after {timeout:g}s: {host} did not answer in time", "slow")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _Failure(f"cannot connect to {host}: {_connection_reason(exc)}", "server")
    if isinstance(exc, ValueError) and hasattr(exc, "doc"):
        # requests' JSONDecodeError keeps the body it could not parse.
        return _Failure(f"HTTP 200 but {_body_summary(secrets.redact(str(exc.doc)))}", "server")
    if isinstance(exc, (KeyError, TypeError)):
        return _Failure("HTTP 200 but the JSON is not a Prometheus API response (no data.result)", "server")
    return _Failure(f"request failed: {type(exc).__name__}", "server")


def _settle_environment(session: requests.Session, url: str, auth: tuple[str, str] | None) -> None:
    """Read what requests takes from the environment (proxies, CA bundle, ~/.netrc) once.

    With `trust_env` requests re-reads all of it on every request: a third of each query's
    CPU here, and 50 queries a tick share one interpreter.
    """
    settings = session.merge_environment_settings(url, {}, None, session.verify, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    if auth is None and session.auth is None:
        session.auth = requests.utils.get_netrc_auth(url)
        if session.auth:
            secrets.remember_basic(*session.auth)
    session.trust_env = False


# ---------------------------------------------------------------- the source

class PrometheusSource(Source):
    kind = "prometheus"
    Config = PrometheusSourceConfig

    def __init__(self, name: str, config: PrometheusSourceConfig, base_dir: Path):
        super().__init__(name, config)
        parts = urlsplit(config.url)
        if parts.password:  # credentials written into the url, sent as basic auth
            secrets.remember_url(config.url)
        self.url = config.url.rstrip("/")
        self.host = parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else config.url
        self.timeout = float(config.timeout)
        self.backfill_span = float(config.backfill)
        self.problem: str | None = None  # a configuration problem: every query reports it
        headers, auth = self._credentials()
        # Headers whose values are secret references never follow a redirect to another host.
        credentials = [key for key, value in config.headers.items() if secrets.is_reference(value)]
        session = GuardedSession(self.timeout, credentials, pool_size=WORKERS)
        session.verify = self._verify(base_dir)
        self.client = PrometheusConnect(
            url=self.url,
            headers=headers,
            auth=auth,
            session=session,
            timeout=self.timeout,
            retry=NO_RETRY,
        )
        # The client mounted an adapter of its own for our url: ours bounds whole requests.
        session.mount(self.url, session.adapter)
        _settle_environment(session, self.url, auth)
        self.pool = DaemonPool(WORKERS, f"prometheus-{name}")
        self.server = _Backoff()
        self.slow: dict[str, _Backoff] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    # -- configuration

    def _credentials(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        cfg = self.config
        headers: dict[str, str] = {}
        auth = None
        try:
            headers = secrets.resolve_headers(cfg.headers)  # a header value may be a reference (an API key)
            if cfg.auth and cfg.auth.bearer:
                headers["Authorization"] = f"Bearer {secrets.resolve(cfg.auth.bearer)}"
            elif cfg.auth and cfg.auth.basic:
                auth = (cfg.auth.basic.username, secrets.resolve(cfg.auth.basic.password))
                secrets.remember_basic(*auth)  # a server echoing its request shows the base64 of both
        except secrets.SecretError as exc:
            self.problem = secrets.redact(str(exc))
        return headers, auth

    def _verify(self, base_dir: Path) -> bool | str:
        tls = self.config.tls
        if tls.insecure_skip_verify:
            # The opt-in is explicit and the banner says INSECURE; a warning per request
            # on stderr would only garble the screen.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            return False
        if tls.ca_bundle:
            path = Path(tls.ca_bundle).expanduser()
            path = path if path.is_absolute() else base_dir / path
            if not path.is_file():
                self.problem = f"tls.ca_bundle {path}: no such file"
            return str(path)
        return True

    @property
    def insecure(self) -> bool:
        return self.config.tls.insecure_skip_verify

    def describe(self) -> str:
        cfg = self.config
        auth = "bearer token" if cfg.auth and cfg.auth.bearer else "basic auth" if cfg.auth else "no auth"
        tls = ", TLS verification OFF" if self.insecure else ""
        return secrets.redact(f"prometheus {self.host} ({auth}, timeout {self.timeout:g}s{tls})")

    def static_problem(self, query: str) -> str | None:
        if self.problem:
            return self.problem
        if not query.strip():
            return "the query is empty"
        return None

    # -- calls

    def _lock(self) -> asyncio.Lock:
        # One lock per event loop: `check` and the console may run in different loops.
        return self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    async def _attempt(self, key: str, call: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        try:
            result = await asyncio.wait_for(loop.run_in_executor(self.pool, call), self.timeout)
        except Exception as exc:
            failure = classify(exc, self.host, self.timeout)
            failure = _Failure(secrets.redact(failure.detail), failure.scope)  # classify keeps what it quotes short
            now = time.monotonic()
            if failure.scope == "server":
                self.server.failed(failure.detail, now)
            elif failure.scope == "slow":
                self.slow.setdefault(key, _Backoff()).failed(failure.detail, now)
            raise failure from None
        self.server.failures = 0
        self.slow.pop(key, None)
        return result

    async def _call(self, key: str, call: Callable[[], Any]) -> Any:
        """The call's result; raises _Failure (never anything else) when there is none."""
        if self.problem:
            raise _Failure(self.problem, "query")
        now = time.monotonic()
        waiting = (self.slow.get(key) or _Backoff()).waiting(now) or self.server.waiting(now)
        if waiting:
            raise _Failure(waiting, "query")
        if self.server.failures:
            # Recovering: one probe at a time, the others wait for its verdict.
            async with self._lock():
                if self.server.failures:
                    waiting = self.server.waiting(time.monotonic())
                    if waiting:
                        raise _Failure(waiting, "query")
                    return await self._attempt(key, call)
        return await self._attempt(key, call)

    async def query(self, query: str, ctx: SourceContext, series_label: str | None = None) -> Reading:
        try:
            result = await self._call(query, lambda: self.client.custom_query(query))
            return interpret(result, query, series_label)
        except _Failure as failure:
            return Reading.error(failure.detail)
        except Exception as exc:  # never raise: an unexpected answer is still just an error reading
            detail = secrets.redact(classify(exc, self.host, self.timeout).detail)
            log.warning("source %s: unexpected %s reading `%s`: %s", self.name, type(exc).__name__, _short(query), detail)
            return Reading.error(detail)

    async def backfill(self, query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        def call() -> Any:
            return self.client.custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{max(step, 1.0):g}s",
            )

        try:
            return _range_points(await self._call(f"range:{query}", call))
        except _Failure as failure:  # history is a nicety; the live query reports the problem
            log.info("source %s: no history for `%s`: %s", self.name, _short(query), failure.detail)
            return []

    async def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
