"""Service settings from ``ESCPREDICT_*`` environment variables (or CLI flags), validated at start.

pydantic-settings gives typed parsing, defaults and one error naming every bad variable, so a
misconfigured deployment fails at boot instead of on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from escpredict.lifecycle.registry import model_uri

DEFAULT_MODEL_URI = model_uri("escalation-risk")


def _split_keys(value: object) -> object:
    """Comma- or whitespace-separated keys in one variable: simplest to set in any orchestrator."""
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    return value


def _read_keys(path: Path | None) -> tuple[str, ...]:
    """One key per line; blank lines and ``#`` comments ignored (mounted secret files)."""
    if path is None:
        return ()
    lines = path.read_text().splitlines()
    return tuple(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))


class ServiceSettings(BaseSettings):
    """Everything the scoring service needs; see serving/README.md for the variable names."""

    model_config = SettingsConfigDict(env_prefix="ESCPREDICT_", extra="ignore")

    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str | None = None

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    api_keys_file: Path | None = None
    admin_key: SecretStr | None = None
    admin_key_file: Path | None = None
    #: The only way to serve without keys; meant for a local demo.
    auth_disabled: bool = False

    max_text_chars: int = Field(10_000, ge=1)
    max_batch: int = Field(100, ge=1)
    max_body_bytes: int = Field(2_000_000, ge=1_000)
    n_reasons: int = Field(5, ge=0, le=50)
    #: Events a ticket's ``state`` may list (its updates so far).
    max_state_events: int = Field(1_000, ge=1)

    #: Seconds between checks whether the model alias moved; 0 turns the check off.
    reload_interval_s: float = Field(0.0, ge=0)
    #: Browser origins allowed to call the API; empty keeps CORS off.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    _split = field_validator("api_keys", "cors_origins", mode="before")(_split_keys)

    @model_validator(mode="after")
    def _keys_are_usable(self) -> ServiceSettings:
        if self.auth_disabled:
            return self
        if not self.scoring_keys():
            raise ValueError(
                "no API keys: set ESCPREDICT_API_KEYS or ESCPREDICT_API_KEYS_FILE, "
                "or disable auth explicitly (ESCPREDICT_AUTH_DISABLED=true / --no-auth)"
            )
        admin = self.admin_keys()
        if set(admin) & set(self.scoring_keys()):
            raise ValueError("the admin key must differ from every scoring key")
        return self

    def scoring_keys(self) -> tuple[str, ...]:
        return tuple(k.get_secret_value() for k in self.api_keys) + _read_keys(self.api_keys_file)

    def admin_keys(self) -> tuple[str, ...]:
        direct = (self.admin_key.get_secret_value(),) if self.admin_key else ()
        return direct + _read_keys(self.admin_key_file)
