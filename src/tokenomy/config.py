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
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tokenomy.currency import Rates, parse_rates
from tokenomy.errors import ConfigError
from tokenomy.money import float_to_decimal

if TYPE_CHECKING:
    from tokenomy.sovereignty.policy import Policy

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
    # kind and base_url may come from a preset (tokenomy.providers.presets).
    kind: Literal["openai", "anthropic", "simulated"] | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    location: Literal["cloud", "local"] = "cloud"
    # Where the provider processes data and how long it keeps it (for the data policy).
    region: str | None = None
    retention: Literal["zdr", "30d", "unknown"] = "unknown"
    preset: str | None = None
    # Provider id in the genai-prices catalog; inferred from base_url and name when omitted.
    catalog_provider: str | None = None
    factory: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # kind = "simulated" only (tokenomy.simulated): the built-in token factory's speed,
    # time to first token, share of failed calls and answer length. No base_url: it
    # runs inside the gateway, on a loopback port chosen at start-up.
    tokens_per_s: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    answer_tokens: int | None = Field(default=None, ge=1)
    # A local server's model (a .gguf path or model package, tokenomy.local): when the
    # server reports no usage, its tokens are counted with this model's own tokenizer.
    tokenizer: str | None = Field(default=None, min_length=1)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class DeploymentSection(_Strict):
    provider: str
    # Omitted on a pattern model: the requested id goes upstream. On a pattern model a
    # ``*`` in it stands for what the name's ``*`` matched ("deepseek/*" → model "*").
    model: str | None = None
    name: str | None = None  # recorded as the event's deployment; default "provider/model"
    price: str | None = None
    factory: str | None = None
    ttft_timeout_s: float | None = Field(default=None, gt=0)
    weight: float = Field(default=1.0, ge=0)


class RetrySection(_Strict):
    """Retry policy of a model (see docs/routing.md)."""

    # Attempts in all, over every deployment; default: one per deployment.
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    backoff_initial_ms: int = Field(default=500, ge=0)
    backoff_max_ms: int = Field(default=5000, ge=0)
    # Upstream statuses retried; connection errors and timeouts always are.
    statuses: list[int] = Field(default_factory=lambda: [408, 409, 429, 500, 502, 503, 504, 529])


class DowngradeSection(_Strict):
    to: str = Field(min_length=1)
    at_share: float = Field(default=0.9, gt=0, le=1)


class BreakerSection(_Strict):
    """Circuit breaker per deployment: opens on a failure rate over a window."""

    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=30.0, gt=0)
    min_requests: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)


class ModelSection(_Strict):
    name: str = Field(min_length=1)
    deployments: list[DeploymentSection] = Field(min_length=1)
    max_output_tokens: int | None = Field(default=None, gt=0)
    strategy: Literal["priority", "cheapest", "fastest", "weighted", "least-busy"] = "priority"
    retry: RetrySection | None = None
    context_window_fallback: str | None = None
    downgrade: DowngradeSection | None = None
    breaker: BreakerSection | None = None


class AliasSection(_Strict):
    pattern: str = Field(min_length=1)  # glob over the requested model id
    model: str = Field(min_length=1)


class RoutingSection(_Strict):
    """Gateway-wide routing defaults."""

    breaker: BreakerSection = Field(default_factory=lambda: BreakerSection())
    sticky_max_entries: int = Field(default=100_000, ge=0)


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


class TaskCapsSection(_Strict):
    """Per-task caps (tokenomy.tasks.caps); unset: no cap. Cost in USD."""

    max_tokens_per_task: int | None = Field(default=None, gt=0)
    max_cost_per_task: Decimal | None = Field(default=None, gt=0, le=1_000_000_000)
    max_calls_per_task: int | None = Field(default=None, gt=0)
    max_task_duration_s: float | None = Field(default=None, gt=0)

    @field_validator("max_cost_per_task", mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        return float_to_decimal(v) if isinstance(v, float) else v


class TasksSection(TaskCapsSection):
    """``[tasks]``: caps for every task, overridden per team and agent; live detection."""

    teams: dict[str, TaskCapsSection] = Field(default_factory=dict)
    agents: dict[str, TaskCapsSection] = Field(default_factory=dict)
    detect: bool = True  # the live token-shredder detector (tokenomy.tasks.shredder)


# Labels `/metrics` may carry (fields of the usage event); never task or user by default.
METRIC_LABELS = frozenset(
    {
        *("org", "team", "user", "key_id", "agent", "task", "step", "model", "endpoint"),
        *("provider", "location", "deployment", "region", "data_class", "api_format"),
        "upstream_model",
    }
)


class MetricsSection(_Strict):
    """``GET /metrics`` in the Prometheus format (docs/observability.md)."""

    enabled: bool = True
    labels: list[str] = Field(
        default_factory=lambda: ["org", "team", "model", "provider", "location"]
    )
    require_admin_key: bool = False  # a global admin key as the scrape's bearer token

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in METRIC_LABELS:
                known = ", ".join(sorted(METRIC_LABELS))
                raise ValueError(f"unknown label {name!r} (known: {known})")
        if len(set(v)) != len(v):
            raise ValueError("labels must not repeat")
        return v


class OtelSection(_Strict):
    """OpenTelemetry spans (the ``tokenomy[otel]`` extra), sent where ``OTEL_*`` point."""

    enabled: bool = False


DataClass = Literal["public", "internal", "confidential", "restricted"]


class DataRuleSection(_Strict):
    """Where one data class may go (tokenomy.sovereignty; docs/data-policy.md). ``regions``
    (globs) and ``retention`` constrain cloud providers only; unset means any."""

    locations: list[Literal["cloud", "local"]] = ["cloud", "local"]  # pydantic copies it
    regions: list[str] | None = None
    retention: list[Literal["zdr", "30d", "unknown"]] | None = None


class PolicyRulesSection(_Strict):
    """A rule per data class: a list of locations, or a table (``DataRuleSection``)."""

    public: DataRuleSection | None = None
    internal: DataRuleSection | None = None
    confidential: DataRuleSection | None = None
    restricted: DataRuleSection | None = None

    @field_validator("public", "internal", "confidential", "restricted", mode="before")
    @classmethod
    def _locations_only(cls, v: Any) -> Any:
        return {"locations": v} if isinstance(v, list) else v


class PolicyOrgSection(PolicyRulesSection):
    teams: dict[str, PolicyRulesSection] = Field(default_factory=dict)


class PolicySection(PolicyRulesSection):
    """``[policy]``: data classes → allowed places, per org/team; what detections mean."""

    default_class: DataClass = "internal"  # no detection
    identifiers: DataClass = "confidential"  # a detected personal identifier
    secrets: DataClass = "restricted"  # a detected API key or private key
    detectors: dict[str, DataClass | Literal["off"]] = Field(default_factory=dict)
    phone_regions: list[str] = Field(default_factory=lambda: ["CN", "US"])
    scan_cache_entries: int = Field(default=65_536, ge=0)
    # False: X-Tokenomy-Data-Class may raise the class but not lower it below the detectors'.
    label_may_lower: bool = True
    teams: dict[str, PolicyRulesSection] = Field(default_factory=dict)
    orgs: dict[str, PolicyOrgSection] = Field(default_factory=dict)


class RawConfig(_Strict):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    providers: dict[str, ProviderSection] = Field(default_factory=dict)
    models: list[ModelSection] = Field(default_factory=list)
    prices: dict[str, PriceSection] = Field(default_factory=dict)
    factories: dict[str, dict[str, Any]] = Field(default_factory=dict)
    alerts: AlertsSection = Field(default_factory=lambda: AlertsSection())
    tasks: TasksSection = Field(default_factory=lambda: TasksSection())
    aliases: list[AliasSection] = Field(default_factory=list)
    routing: RoutingSection = Field(default_factory=lambda: RoutingSection())
    # Dated exchange rates for reports (tokenomy.currency): date, source, CODE = "rate".
    currency: dict[str, Any] = Field(default_factory=dict)
    metrics: MetricsSection = Field(default_factory=lambda: MetricsSection())
    otel: OtelSection = Field(default_factory=lambda: OtelSection())
    policy: PolicySection = Field(default_factory=lambda: PolicySection())


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: Literal["openai", "anthropic", "simulated"]
    base_url: str
    api_key_env: str | None
    location: Literal["cloud", "local"]
    catalog_provider: str | None
    factory: str | None
    headers: dict[str, str]
    region: str = ""
    retention: Literal["zdr", "30d", "unknown"] = "unknown"
    preset: str | None = None
    tokenizer: str | None = None  # tokenomy.local.metering.counter_for(tokenizer)

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: Provider
    model: str  # on a pattern model: a template ("" = the requested id, "*" = the match)
    price: str | None
    factory: str | None
    name: str = ""  # health, stats and stickiness are kept per name; "" = provider/model
    ttft_timeout_s: float | None = None
    weight: float = 1.0

    @property
    def label(self) -> str:
        """The name recorded as the event's ``deployment``."""
        return self.name or f"{self.provider.name}/{self.model}"


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    deployments: tuple[Deployment, ...]
    max_output_tokens: int | None = None
    strategy: str = "priority"
    retry: RetrySection = field(default_factory=lambda: RetrySection())
    context_window_fallback: str | None = None
    downgrade: DowngradeSection | None = None
    breaker: BreakerSection | None = None  # None: the gateway-wide [routing.breaker]
    pattern: bool = False  # the name is a glob; deployments pass the requested id on
    # Attempts in all (the retry table's max_attempts, else one per deployment).
    max_attempts: int = 1


@dataclass(frozen=True, slots=True)
class Alias:
    pattern: str  # glob over the requested model id
    model: str  # a configured model name


@dataclass(frozen=True, slots=True)
class Settings:
    path: str
    gateway: GatewaySection
    providers: dict[str, Provider]
    models: dict[str, Model]
    prices: dict[str, PriceSection]
    factories: dict[str, dict[str, Any]]
    raw: RawConfig = field(repr=False)
    currency: Rates = field(default_factory=Rates)
    # Routing: aliases in config order; models whose names are globs, in config order
    # (``models`` holds them too, under their glob).
    aliases: tuple[Alias, ...] = ()
    patterns: tuple[Model, ...] = ()
    routing: RoutingSection = field(default_factory=lambda: RoutingSection())
    # The data policy ([policy], tokenomy.sovereignty): permissive when not configured.
    policy: Policy = field(default_factory=lambda: _policy(PolicySection(), "<default>"))

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
        providers[name] = _provider(name, ps, path)

    models: dict[str, Model] = {}
    for i, ms in enumerate(raw.models):
        if ms.name in models:
            raise ConfigError(path, f"models[{i}].name", f"duplicate model name {ms.name!r}")
        models[ms.name] = _model(ms, f"models[{i}]", providers, raw, path)
    for i, ms in enumerate(raw.models):
        for field_name in ("context_window_fallback", "downgrade"):
            target = getattr(ms, field_name)
            target = target.to if isinstance(target, DowngradeSection) else target
            if target is not None and target not in models:
                raise ConfigError(path, f"models[{i}].{field_name}", f"unknown model {target!r}")
    for i, al in enumerate(raw.aliases):
        if al.model not in models:
            raise ConfigError(path, f"aliases[{i}].model", f"unknown model {al.model!r}")
    aliases = tuple(Alias(a.pattern, a.model) for a in raw.aliases)
    patterns = tuple(m for m in models.values() if m.pattern)

    try:
        rates = parse_rates(raw.currency)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(path, f"currency.{key}", problem) from exc

    return Settings(
        path,
        raw.gateway,
        providers,
        models,
        dict(raw.prices),
        dict(raw.factories),
        raw,
        currency=rates,
        aliases=aliases,
        patterns=patterns,
        routing=raw.routing,
        policy=_policy(raw.policy, path),
    )


def _policy(section: PolicySection, path: str) -> Policy:
    from tokenomy.sovereignty.policy import build_policy

    return build_policy(section, path)


def is_pattern(name: str) -> bool:
    """Whether a model name is a glob (``claude-*``, ``deepseek/*``)."""
    return any(c in name for c in "*?[")


def _provider(name: str, ps: ProviderSection, path: str) -> Provider:
    from tokenomy.providers.presets import PRESETS

    kind, base_url, key_env, catalog, region = (
        ps.kind,
        ps.base_url,
        ps.api_key_env,
        ps.catalog_provider,
        ps.region,
    )
    if ps.preset is not None:
        preset = PRESETS.get(ps.preset)
        if preset is None:
            raise ConfigError(
                path,
                f"providers.{name}.preset",
                f"unknown preset {ps.preset!r} (known: {', '.join(sorted(PRESETS))})",
            )
        kind = kind or preset.kind
        base_url = base_url or preset.base_url
        key_env = key_env or preset.api_key_env
        catalog = catalog or preset.catalog_provider
        region = region if region is not None else preset.region
    if kind is None:
        raise ConfigError(path, f"providers.{name}.kind", "missing required field")
    simulated = ("tokens_per_s", "ttft_ms", "failure_rate", "answer_tokens")
    if kind == "simulated":  # served inside the gateway (tokenomy.simulated)
        if base_url is not None:
            raise ConfigError(
                path, f"providers.{name}.base_url", "not used by kind = 'simulated' (built in)"
            )
        base_url = "http://127.0.0.1"  # the real port is set at start-up
    else:
        for option in simulated:
            if getattr(ps, option) is not None:
                raise ConfigError(path, f"providers.{name}.{option}", "only for kind = 'simulated'")
    if base_url is None:
        raise ConfigError(path, f"providers.{name}.base_url", "missing required field")
    return Provider(
        name,
        kind,
        base_url,
        key_env,
        ps.location,
        catalog,
        ps.factory,
        dict(ps.headers),
        region or "",
        ps.retention,
        ps.preset,
        ps.tokenizer,
    )


def _model(
    ms: ModelSection, where: str, providers: dict[str, Provider], raw: RawConfig, path: str
) -> Model:
    pattern = is_pattern(ms.name)
    deps: list[Deployment] = []
    names: set[str] = set()
    for j, ds in enumerate(ms.deployments):
        key = f"{where}.deployments[{j}]"
        if ds.provider not in providers:
            known = ", ".join(sorted(providers)) or "none defined"
            raise ConfigError(
                path, f"{key}.provider", f"unknown provider {ds.provider!r} (known: {known})"
            )
        if ds.price is not None and ds.price not in raw.prices:
            raise ConfigError(path, f"{key}.price", f"unknown price id {ds.price!r}")
        if ds.factory is not None and ds.factory not in raw.factories:
            raise ConfigError(path, f"{key}.factory", f"unknown factory {ds.factory!r}")
        model = ds.model
        if model is None:
            if not pattern:
                raise ConfigError(path, f"{key}.model", "missing required field")
            model = ""
        dep = Deployment(
            providers[ds.provider],
            model,
            ds.price,
            ds.factory,
            ds.name or f"{ds.provider}/{model or '*'}",
            ds.ttft_timeout_s,
            ds.weight,
        )
        if dep.name in names:
            raise ConfigError(path, f"{key}.name", f"duplicate deployment name {dep.name!r}")
        names.add(dep.name)
        deps.append(dep)
    retry = ms.retry or RetrySection()
    return Model(
        ms.name,
        tuple(deps),
        ms.max_output_tokens,
        ms.strategy,
        retry,
        ms.context_window_fallback,
        ms.downgrade,
        ms.breaker,
        pattern,
        retry.max_attempts or len(deps),
    )
