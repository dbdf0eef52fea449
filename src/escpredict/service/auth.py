"""API-key checks: scoring keys for ``/v1``, a separate admin key for ``/admin``.

Keys are compared with ``hmac.compare_digest`` against every configured key (no early exit),
so response timing says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, status
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyHeader

KEY_HEADER = "X-API-Key"


def _matches(candidate: str, keys: tuple[bytes, ...]) -> bool:
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


class RequireKey(APIKeyHeader):
    """A FastAPI security dependency accepting exactly ``keys`` (any request, when auth is off).

    The ``X-API-Key`` scheme checks the key itself: a check depending on an ``APIKeyHeader`` is
    one more dependency for FastAPI to solve on every request. OpenAPI shows the plain scheme.
    async so FastAPI runs it on the event loop instead of handing it to a thread.
    """

    def __init__(self, keys: tuple[str, ...], enabled: bool, scope: str) -> None:
        super().__init__(
            name=KEY_HEADER, scheme_name="APIKeyHeader", auto_error=False,
            description="Scoring or admin API key.",
        )
        self.keys = tuple(k.encode() for k in keys)
        self.enabled = enabled
        self.scope = scope

    async def __call__(self, request: HTTPConnection) -> None:
        api_key = request.headers.get(KEY_HEADER)
        if self.enabled and (not api_key or not _matches(api_key, self.keys)):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=f"a valid {self.scope} API key is required in the {KEY_HEADER} header",
                headers={"WWW-Authenticate": "ApiKey"},
            )
