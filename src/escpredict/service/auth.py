"""API-key checks: scoring keys for ``/v1``, a separate admin key for ``/admin``.

Keys are compared with ``hmac.compare_digest`` against every configured key (no early exit),
so response timing says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Security, status
from fastapi.security import APIKeyHeader

KEY_HEADER = "X-API-Key"
_header = APIKeyHeader(name=KEY_HEADER, auto_error=False, description="Scoring or admin API key.")


def _matches(candidate: str, keys: tuple[bytes, ...]) -> bool:
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


def require_key(
    keys: tuple[str, ...], enabled: bool, scope: str
) -> Callable[[str | None], Awaitable[None]]:
    """A FastAPI dependency accepting exactly ``keys`` (any request, when auth is off).

    async so FastAPI runs it on the event loop instead of handing it to a thread.
    """
    encoded = tuple(k.encode() for k in keys)

    async def check(api_key: str | None = Security(_header)) -> None:
        if enabled and (api_key is None or not _matches(api_key, encoded)):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=f"a valid {scope} API key is required in the {KEY_HEADER} header",
                headers={"WWW-Authenticate": "ApiKey"},
            )

    return check
