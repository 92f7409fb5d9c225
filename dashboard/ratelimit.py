"""The login rate limiter: failed logins per username and per client address, with lockouts."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from dashboard.settings import Settings
from datasources import users

_FAILURE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n < tonumber(ARGV[2]) then return 0 end
local strikes = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local ms = math.floor(math.min(tonumber(ARGV[3]) * 2 ^ (strikes - 1), tonumber(ARGV[4])))
redis.call('SET', KEYS[2], '1', 'PX', ms)
redis.call('DEL', KEYS[1])
return ms
"""


@dataclass
class _Counter:
    failures: int = 0
    window_ends: float = 0.0
    locked_until: float = 0.0
    strikes: int = 0
    forget_at: float = 0.0


class LoginLimiter:
    """Count failed logins per username and per client address, and lock them out for a while.

    After ``max_failures`` failures within ``window_s`` (per address: ``address_max_failures``,
    higher because a town office shares one address), the name or address is refused for
    ``lockout_s``, doubling with each further lockout up to ``max_lockout_s``; lockouts are
    remembered for ``memory_s``. Redis keys live under ``prefix`` (``wushi:{district}:auth:``);
    without Redis the counts stay in this process.
    """

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        prefix: str = "wushi:auth:",
        max_failures: int = 5,
        address_max_failures: int = 20,
        window_s: float = 60.0,
        lockout_s: float = 30.0,
        max_lockout_s: float = 3600.0,
        memory_s: float = 86400.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max = {"user": max_failures, "addr": address_max_failures}
        self._window_s = window_s
        self._lockout_s = lockout_s
        self._max_lockout_s = max_lockout_s
        self._memory_s = memory_s
        self._counters: dict[str, _Counter] = {}
        self._lock = threading.Lock()
        self._script = redis.register_script(_FAILURE_SCRIPT) if redis is not None else None

    @classmethod
    def for_settings(
        cls, settings: Settings, redis: Redis | None = None, **kw: Any
    ) -> LoginLimiter:
        """Return a limiter with the district's Redis key prefix."""
        return cls(redis, prefix=settings.stream_key("auth:"), **kw)

    def _subjects(self, username: str, address: str | None) -> list[tuple[str, str]]:
        if users.USERNAME_RE.fullmatch(username):
            name = username
        else:  # keep attacker-chosen strings out of key names
            name = "~" + hashlib.sha256(username.encode()).hexdigest()[:16]
        subjects = [("user", name)]
        if address:
            subjects.append(("addr", address))
        return subjects

    def _key(self, kind: str, subject: str, part: str) -> str:
        return f"{self._prefix}fail:{kind}:{subject}:{part}"

    def locked_for(self, username: str, address: str | None) -> float:
        """Return how many seconds attempts for this name or from this address are refused."""
        subjects = self._subjects(username, address)
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=False)
            for kind, subject in subjects:
                pipe.pttl(self._key(kind, subject, "lock"))
            return max([0.0, *(ms / 1000 for ms in pipe.execute() if ms and ms > 0)])
        now = time.monotonic()
        with self._lock:
            waits = [
                self._counters[f"{k}:{s}"].locked_until - now
                for k, s in subjects
                if f"{k}:{s}" in self._counters
            ]
        return max([0.0, *waits])

    def failure(self, username: str, address: str | None) -> float:
        """Count a failed attempt; return the lockout in seconds it started (0 for none)."""
        started = 0.0
        for kind, subject in self._subjects(username, address):
            if self._script is not None:
                ms = self._script(
                    keys=[self._key(kind, subject, p) for p in ("n", "lock", "strikes")],
                    args=[
                        int(self._window_s * 1000),
                        self._max[kind],
                        int(self._lockout_s * 1000),
                        int(self._max_lockout_s * 1000),
                        int(self._memory_s * 1000),
                    ],
                )
                started = max(started, int(ms) / 1000)
            else:
                started = max(started, self._memory_failure(f"{kind}:{subject}", self._max[kind]))
        return started

    def _memory_failure(self, name: str, limit: int) -> float:
        now = time.monotonic()
        with self._lock:
            if len(self._counters) > 100_000:
                self._counters = {k: c for k, c in self._counters.items() if c.forget_at > now}
            c = self._counters.setdefault(name, _Counter())
            if now >= c.forget_at:
                c.strikes = 0
            if now >= c.window_ends:
                c.failures, c.window_ends = 0, now + self._window_s
            c.failures += 1
            c.forget_at = max(c.forget_at, now + self._window_s)
            if c.failures < limit:
                return 0.0
            c.strikes += 1
            c.failures = 0
            seconds = min(self._lockout_s * 2 ** (c.strikes - 1), self._max_lockout_s)
            c.locked_until = now + seconds
            c.forget_at = now + max(self._memory_s, seconds)
            return seconds

    def success(self, username: str) -> None:
        """Forget the failures and lockouts of ``username`` (not of the address)."""
        ((kind, subject),) = self._subjects(username, None)
        if self._redis is not None:
            self._redis.delete(self._key(kind, subject, "n"), self._key(kind, subject, "strikes"))
            return
        with self._lock:
            self._counters.pop(f"{kind}:{subject}", None)
