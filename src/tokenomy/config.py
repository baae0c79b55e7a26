"""Configuration: TOML → raw pydantic models (``extra="forbid"``) → frozen runtime settings.

Two phases, so that every mistake is reported with the file, the key and the problem:
``load_config(path)`` parses and validates, then resolves cross references
(deployment → provider, deployment → price, provider/deployment → factory).
Secrets never live in the file: ``api_key_env`` names an environment variable.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tokenomy.errors import ConfigError
from tokenomy.money import float_to_decimal

DEFAULT_DB_URL = "sqlite:///tokenomy.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    db: str | None = None
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    request_timeout_s: float = Field(default=600.0, gt=0)
    journal_dir: str | None = None
    ledger_batch_size: int = Field(default=500, gt=0)
    ledger_flush_interval_s: float = Field(default=0.2, gt=0)
    timezone: str = "UTC"
    # Client connections: a new connection (or the next request on a kept-alive one) must
    # send its complete headers within header_timeout_s; a request body may pause at most
    # body_timeout_s between chunks (then 408); an idle kept-alive connection is closed
    # after keepalive_timeout_s. max_connections (default: sized from the open-file
    # limit) caps open client connections: at the cap the longest-idle one is closed.
    header_timeout_s: float = Field(default=15.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    keepalive_timeout_s: float = Field(default=75.0, gt=0)
    max_connections: int | None = Field(default=None, gt=0)


class ProviderSection(_Strict):
    kind: Literal["openai", "anthropic"]
    base_url: str
    api_key_env: str | None = None
    location: Literal["cloud", "local"] = "cloud"
    # Provider id in the genai-prices catalog; inferred from base_url and name when omitted.
    catalog_provider: str | None = None
    factory: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class DeploymentSection(_Strict):
    provider: str
    model: str
    price: str | None = None
    factory: str | None = None


class ModelSection(_Strict):
    name: str = Field(min_length=1)
    deployments: list[DeploymentSection] = Field(min_length=1)
    max_output_tokens: int | None = Field(default=None, gt=0)


class PriceSection(_Strict):
    """Custom or negotiated price, USD per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cache_read: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)
    cache_write_1h: Decimal | None = Field(default=None, ge=0)
    per_request: Decimal = Field(default=Decimal(0), ge=0)

    @field_validator(
        "input",
        "output",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "per_request",
        mode="before",
    )
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        return float_to_decimal(v) if isinstance(v, float) else v


class AlertsSection(_Strict):
    """Where budget alerts go besides the log: a JSON webhook (Slack, PagerDuty, ...)."""

    webhook_url: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)


class RawConfig(_Strict):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    providers: dict[str, ProviderSection] = Field(default_factory=dict)
    models: list[ModelSection] = Field(default_factory=list)
    prices: dict[str, PriceSection] = Field(default_factory=dict)
    factories: dict[str, dict[str, Any]] = Field(default_factory=dict)
    alerts: AlertsSection = Field(default_factory=lambda: AlertsSection())


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: Literal["openai", "anthropic"]
    base_url: str
    api_key_env: str | None
    location: Literal["cloud", "local"]
    catalog_provider: str | None
    factory: str | None
    headers: dict[str, str]

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: Provider
    model: str
    price: str | None
    factory: str | None


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    deployments: tuple[Deployment, ...]
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    path: str
    gateway: GatewaySection
    providers: dict[str, Provider]
    models: dict[str, Model]
    prices: dict[str, PriceSection]
    factories: dict[str, dict[str, Any]]
    raw: RawConfig = field(repr=False)

    def db_url(self, override: str | None = None) -> str:
        """``--db`` beats ``TOKENOMY_DB`` beats the config file beats the default."""
        return resolve_db_url(override, self.gateway.db)


def resolve_db_url(cli_value: str | None, config_value: str | None = None) -> str:
    return cli_value or os.environ.get("TOKENOMY_DB") or config_value or DEFAULT_DB_URL


def _loc_to_key(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    # Render pydantic's location as the TOML key a user would write, e.g. models[0].deployments[1].
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1 if parts else 0 :] = [f"{parts[-1] if parts else ''}[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def load_config(path: str | os.PathLike[str]) -> Settings:
    """Read, validate and resolve a tokenomy TOML configuration file."""
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(p, "", f"cannot read file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(p, "", f"invalid TOML: {exc}") from exc
    return parse_config(data, p)


def parse_config(data: dict[str, Any], path: str = "<config>") -> Settings:
    """Validate an already-parsed TOML document (used by tests and ``load_config``)."""
    try:
        raw = RawConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc_to_key(tuple(err["loc"]), data)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "missing required field"
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(path, key, msg + more) from exc
    return _resolve(raw, path)


def _resolve(raw: RawConfig, path: str) -> Settings:
    from tokenomy.economics.profiles import validate_factory_table

    for fname, table in raw.factories.items():
        try:
            validate_factory_table(fname, table)
        except ValueError as exc:
            raise ConfigError(path, f"factories.{fname}", str(exc)) from exc

    providers: dict[str, Provider] = {}
    for name, ps in raw.providers.items():
        if ps.factory is not None and ps.factory not in raw.factories:
            raise ConfigError(path, f"providers.{name}.factory", f"unknown factory {ps.factory!r}")
        providers[name] = Provider(
            name,
            ps.kind,
            ps.base_url,
            ps.api_key_env,
            ps.location,
            ps.catalog_provider,
            ps.factory,
            dict(ps.headers),
        )

    models: dict[str, Model] = {}
    for i, ms in enumerate(raw.models):
        if ms.name in models:
            raise ConfigError(path, f"models[{i}].name", f"duplicate model name {ms.name!r}")
        deps: list[Deployment] = []
        for j, ds in enumerate(ms.deployments):
            key = f"models[{i}].deployments[{j}]"
            if ds.provider not in providers:
                known = ", ".join(sorted(providers)) or "none defined"
                raise ConfigError(
                    path, f"{key}.provider", f"unknown provider {ds.provider!r} (known: {known})"
                )
            if ds.price is not None and ds.price not in raw.prices:
                raise ConfigError(path, f"{key}.price", f"unknown price id {ds.price!r}")
            if ds.factory is not None and ds.factory not in raw.factories:
                raise ConfigError(path, f"{key}.factory", f"unknown factory {ds.factory!r}")
            deps.append(Deployment(providers[ds.provider], ds.model, ds.price, ds.factory))
        models[ms.name] = Model(ms.name, tuple(deps), ms.max_output_tokens)

    return Settings(
        path, raw.gateway, providers, models, dict(raw.prices), dict(raw.factories), raw
    )
