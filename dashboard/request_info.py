"""What a request's handlers tell its log line: one dict per HTTP request or socket.

The request log (``dashboard/logs.py``) sets it for each request; the callback timing
(``dashboard/metrics.py``) writes the Dash callback's name into it. Its own module, so that
neither of the two imports the other for it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

REQUEST_INFO: ContextVar[dict[str, Any] | None] = ContextVar("wushi_request_info", default=None)
