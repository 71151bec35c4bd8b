{%- set local_model = cookiecutter._blueprint.stack.model_server.model if cookiecutter._blueprint.stack.model_server else 'local-model' -%}
"""Configuration from environment variables (and an optional `.env`), validated once at startup.

Defaults are the embedded ones: SQLite, the in-process rate limiter and, when no provider credentials are
set, the offline `fake` provider. Every default that came from the aistarter blueprint says so.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderEntry(TypedDict):
    """One model provider. Its adapter is the class `<Name>Provider` in app/gateway/providers/<name>.py, and
    everything else derives from this entry: the settings <name>_api_key and <name>_base_url (OPENAI_API_KEY,
    OPENAI_BASE_URL, ...), model routing, the fallback model and what production requires (docs/extending.md)."""

    models: list[str]  # model-name patterns (fnmatch) it serves, the defaults of MODEL_MAP
    default_model: str  # the model it is asked for when reached by fallback rather than by name
    base_url: str | None  # its API; None for a server only the deployment can name: then the URL is the credential
    secret: str  # the environment variable production cannot run without (the key, or the URL when base_url is None)


# The model providers; their order is the default of the PROVIDERS setting (from the aistarter blueprint: criterion
# "plug-in"). Keep this a literal: infra/tests/test_app_contract.py reads the `secret`s without importing the app.
PROVIDERS: dict[str, ProviderEntry] = {
{%- for p in cookiecutter._blueprint.stack.gateway.providers %}
{%- if p == 'openai' %}
    "openai": {"models": ["gpt-*", "o[0-9]*"], "default_model": "gpt-4.1-mini",
               "base_url": "https://api.openai.com/v1", "secret": "OPENAI_API_KEY"},
{%- elif p == 'anthropic' %}
    "anthropic": {"models": ["claude-*"], "default_model": "claude-haiku-4-5",
                  "base_url": "https://api.anthropic.com", "secret": "ANTHROPIC_API_KEY"},
{%- elif p == 'gemini' %}
    "gemini": {"models": ["gemini-*"], "default_model": "gemini-2.5-flash",
               "base_url": "https://generativelanguage.googleapis.com", "secret": "GEMINI_API_KEY"},
{%- elif p == 'local' %}
    # A self-hosted OpenAI-compatible server (vLLM, Ollama); LOCAL_MODEL names what it serves.
    "local": {"models": ["{{ local_model }}"],
              "default_model": "{{ local_model }}",
              "base_url": None, "secret": "LOCAL_MODEL_BASE_URL"},
{%- endif %}
{%- endfor %}
}

# Model-name patterns (fnmatch) to provider. A request names a model; this map picks who serves it.
DEFAULT_MODEL_MAP: dict[str, str] = {pattern: name for name, entry in PROVIDERS.items() for pattern in entry["models"]}

# The model each provider uses when it is reached by fallback rather than by name.
DEFAULT_PROVIDER_MODELS: dict[str, str] = {
    **{name: entry["default_model"] for name, entry in PROVIDERS.items()}, "fake": "fake-1"}

ADAPTERS = Path(__file__).parent / "gateway" / "providers"


def credential_field(provider: str) -> str:
    """The setting without which `provider` is not used: its API key, or its URL when it has no public one."""
    return f"{provider}_api_key" if PROVIDERS[provider]["base_url"] is not None else f"{provider}_base_url"


def _known_provider(name: str) -> str:
    if name != "fake" and name not in PROVIDERS:
        raise ValueError(f"unknown provider '{name}'; use one of {[*PROVIDERS, 'fake']}")
    if name != "fake" and not (ADAPTERS / f"{name}.py").is_file():
        raise ValueError(f"provider '{name}' has no adapter: add app/gateway/providers/{name}.py")
    return name


# A name in PROVIDERS, or the offline `fake`.
ProviderName = Annotated[str, AfterValidator(_known_provider)]

# USD per million tokens [input, output]; list prices, 2025-10 snapshot. Verify before billing anyone:
# a model missing here is recorded with cost = null (unknown), never as free.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
{%- if 'openai' in cookiecutter._blueprint.stack.gateway.providers %}
    "gpt-4.1-mini*": (0.40, 1.60),
    "gpt-4.1*": (2.00, 8.00),
    "gpt-4o-mini*": (0.15, 0.60),
    "gpt-4o*": (2.50, 10.00),
{%- endif %}
{%- if 'anthropic' in cookiecutter._blueprint.stack.gateway.providers %}
    "claude-haiku-4-5*": (1.00, 5.00),
    "claude-sonnet-4*": (3.00, 15.00),
{%- endif %}
{%- if 'gemini' in cookiecutter._blueprint.stack.gateway.providers %}
    "gemini-2.5-flash*": (0.30, 2.50),
    "gemini-2.5-pro*": (1.25, 10.00),
{%- endif %}
{%- if 'local' in cookiecutter._blueprint.stack.gateway.providers %}
    # Self-hosted: the GPU bill is in the infra cost estimate, so tokens are free at this layer.
    "{{ local_model }}": (0.0, 0.0),
{%- endif %}
    "fake-*": (0.0, 0.0),
}


# Settings production cannot run without, by environment name -> field: the manifests in infra/ must supply each
# one (infra/tests/test_app_contract.py reads this mapping), and APP_ENV=production refuses to start when one is
# empty.
REQUIRED_IN_PRODUCTION: dict[str, str] = {
    "DATABASE_URL": "database_url",
    **{entry["secret"]: credential_field(name) for name, entry in PROVIDERS.items()},
{%- if cookiecutter.auth == 'api_key' %}
    "AISTARTER_API_KEYS": "api_keys",
{%- endif %}
}


def _provider_fields() -> dict[str, Any]:
    """<name>_api_key and <name>_base_url for every provider. The credential also reads the entry's `secret`
    when that is another name (the manifests set LOCAL_MODEL_BASE_URL for local_base_url)."""
    fields: dict[str, Any] = {}
    for name, entry in PROVIDERS.items():
        secret = entry["secret"].lower()
        for field, kind, default, what in ((f"{name}_api_key", SecretStr | None, None, "API key"),
                                           (f"{name}_base_url", str | None, entry["base_url"], "API base URL")):
            needed = field == credential_field(name)
            fields[field] = (kind, Field(
                default, validation_alias=AliasChoices(field, secret) if needed and secret != field else None,
                description=f"`{name}`'s {what}" + ("; the provider is used only when it is set." if needed else ".")))
    return fields


if TYPE_CHECKING:
    # The provider fields are made at runtime from PROVIDERS; typed code reads them through Settings.api_key()
    # and Settings.base_url().
    _ProviderSettings = BaseSettings
else:
    _ProviderSettings = create_model("_ProviderSettings", __base__=BaseSettings, **_provider_fields())


class Settings(_ProviderSettings):
    # populate_by_name: fields with an alias (the names infra/ sets) still accept their own name.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True)

    # --- server and storage
    app_env: str = Field("development", description="`production` refuses the dev-only defaults at startup and "
                         "turns the playground off by default.")
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite:///./app.db"
    auto_migrate: bool = Field(True, description="Run `alembic upgrade heads` at startup (the deployment runs a "
                               "migration Job instead: AUTO_MIGRATE=false).")
    log_level: str = "INFO"
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Serve /metrics and /internal/* on this "
                                     "port only, never on the public one (the manifests set it).")
    # All interfaces: the pod's network policy, not the bind address, decides who may scrape.
    metrics_host: str = "0.0.0.0"
    sse_keepalive_s: float = Field(10.0, gt=0, le=25, description="While a streamed request is held (a cold "
                                   "model), send an SSE comment this often so proxies never see an idle stream.")

    # --- gateway (defaults from the aistarter blueprint: criteria "latency" and "plug-in")
    providers: list[ProviderName] = Field(default_factory=lambda: list(PROVIDERS))
    fallback: list[ProviderName] = Field(
        default_factory=lambda: list[ProviderName]([{% for p in cookiecutter._blueprint.stack.gateway.fallback %}"{{ p }}"{% if not loop.last %}, {% endif %}{% endfor %}])
    )
    retries: int = Field({{ cookiecutter._blueprint.stack.gateway.retries }}, ge=0, le=5)
    timeout_s: float = Field({{ (cookiecutter._blueprint.stack.gateway.timeout_s * 1000) | int }} / 1000, gt=0,
                             description="First-chunk timeout per attempt, in seconds.")
    provider_timeouts: dict[str, float] = Field(default_factory=dict, description="Per-provider first-chunk timeout.")
    stream_idle_timeout_s: float = Field(60.0, gt=0, description="Longest silence allowed between two chunks.")
    latency_budget_ms: int = Field(
        {{ cookiecutter.latency_budget_ms }}, gt=0, validation_alias=AliasChoices("latency_budget_ms", "model_cold_start_wait_ms"),
        description="Also how long a request waits for a cold self-hosted model.",
    )
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open a provider's circuit.")
    breaker_reset_s: float = Field(30.0, gt=0)
    model_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODEL_MAP))
    provider_models: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROVIDER_MODELS))
    default_model: str | None = None
    prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

{%- if 'local' in cookiecutter._blueprint.stack.gateway.providers %}
    # --- the self-hosted provider (its URL and key come from PROVIDERS)
    local_model: str | None = Field(None, description="The served model's name; routes that name to `local`.",
                                    validation_alias=AliasChoices("local_model", "local_model_name"))
    local_retry_after_s: int = Field(
        {{ cookiecutter._blueprint.stack.model_server.cold_start_s if cookiecutter._blueprint.stack.model_server else 60 }},
        ge=1, description="Retry-After sent while the local model server is cold (its cold start).",
    )
    local_wake_hold_s: float = Field(
        120.0, ge=0, description="Keep the pending gauge >= 1 this long after a cold refusal (autoscaler polls).",
    )
{%- endif %}
    fake_token_delay_ms: float = Field(15.0, ge=0, description="Pace of the offline fake provider.")

    # --- prompts and provenance
    prompts_dir: str = "prompts"
    prompt_name: str = "assistant"
    prompt_version: str = Field("latest", description="A version file name in prompts/<name>/, or 'latest'.")
    trace_content: Literal["full", "redacted", "metadata"] = "{{ cookiecutter.trace_content }}"
{%- if cookiecutter.vector_store != 'none' %}
    retrieval_k: int = Field(4, ge=1, le=50, description="Chunks retrieved into the prompt per chat request.")
{%- endif %}

    # --- iteration loop (issue 19, helper H8): the /playground page (APP_ENV=production turns it off)
    playground_enabled: bool | None = Field(
        None, description="Serve /playground; unset means on everywhere except APP_ENV=production.")
    # --- end iteration loop

    # --- limits
    max_body_bytes: int = Field(1_000_000, gt=0)
{%- if cookiecutter.auth == 'api_key' %}
    rate_limit_rps: float = Field(5.0, gt=0, description="Sustained requests per second per API key.")
    rate_limit_burst: int = Field(20, ge=1, description="Token bucket size per API key.")
    # Keys to make sure exist at startup, from a Kubernetes Secret: comma-separated `tenant:key` or bare `key`
    # (tenant "default"). Stored hashed like CLI-made keys.
    api_keys: SecretStr | None = Field(None, validation_alias=AliasChoices("api_keys", "aistarter_api_keys"))
{%- endif %}
{%- if cookiecutter.usage_billing == 'stripe' %}

    # --- Stripe meter events (drained from the outbox)
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_meter_event_name: str = "ai_tokens"
    stripe_export_interval_s: float = Field(10.0, gt=0)
{%- endif %}

    @field_validator("database_url")
    @classmethod
    def _driver(cls, url: str) -> str:
        # `postgresql://` would pick psycopg2 and `+asyncpg` needs an async engine; neither is installed here.
        # psycopg 3 is the supported driver, so both are rewritten to it.
        for prefix in ("postgres://", "postgresql://", "postgresql+asyncpg://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
{%- if 'local' in cookiecutter._blueprint.stack.gateway.providers %}
        if self.local_model:
            self.model_map = {self.local_model: "local", **self.model_map}
            self.provider_models = {**self.provider_models, "local": self.local_model}
{%- endif %}
        unknown = sorted({p for p in self.model_map.values()} - {*PROVIDERS, "fake"})
        if unknown:
            known = [*PROVIDERS, "fake"]
            raise ValueError(f"MODEL_MAP names unknown provider(s) {unknown}; use one of {known}")
        return self

    def playground_on(self) -> bool:
        if self.playground_enabled is not None:
            return self.playground_enabled
        return self.app_env.strip().lower() != "production"

    def api_key(self, provider: str) -> str:
        """`provider`'s API key (<NAME>_API_KEY), '' when unset."""
        key = getattr(self, f"{provider}_api_key", None)
        return key.get_secret_value() if isinstance(key, SecretStr) else ""

    def base_url(self, provider: str) -> str:
        """`provider`'s base URL (<NAME>_BASE_URL) without a trailing slash, '' when unset."""
        return str(getattr(self, f"{provider}_base_url", None) or "").rstrip("/")

    def credentials(self, provider: str) -> bool:
        """Whether a provider has what it needs to be called."""
        if provider == "fake":
            return True
        if provider not in PROVIDERS:
            return False
        return bool(self.api_key(provider) if credential_field(provider).endswith("_api_key") else
                    self.base_url(provider))

    def configured_providers(self) -> list[str]:
        return [p for p in self.providers if p != "fake" and self.credentials(p)]

    def timeout_for(self, provider: str) -> float:
        return self.provider_timeouts.get(provider, self.timeout_s)


def production_problem(settings: Settings) -> str | None:
    """What would make a production process run on a dev-only default, as one line naming the setting; or None."""
    for env, field in REQUIRED_IN_PRODUCTION.items():
        value = getattr(settings, field, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value:
            return f"{env} is empty: set it (in Kubernetes, the Secret the manifests reference)"
    if settings.database_url.startswith("sqlite"):
        return ("DATABASE_URL is SQLite: replicas and the worker must share one PostgreSQL "
                "(postgresql://USER:PASSWORD@HOST:5432/DB)")
    if "fake" in settings.providers:
        return "PROVIDERS includes the dev-only `fake` provider: remove it"
    if not settings.configured_providers():
        return "no provider has credentials, so the dev-only `fake` provider would answer: set " + " or ".join(
            entry["secret"] for entry in PROVIDERS.values())
{%- if cookiecutter.vector_store != 'none' %}
    from app.memory.config import MemorySettings

    memory = MemorySettings()
    if memory.embeddings_provider == "fake" or (memory.embeddings_provider == "auto" and not memory.openai_api_key):
        return ("EMBEDDINGS_PROVIDER resolves to the dev-only `fake` embedder: set OPENAI_API_KEY, or "
                "EMBEDDINGS_PROVIDER=local with EMBEDDINGS_BASE_URL")
{%- endif %}
    return None


def refuse_toys(settings: Settings) -> None:
    """Exit with one line (no traceback) when APP_ENV=production would run on a dev-only default."""
    if settings.app_env.strip().lower() != "production":
        return
    problem = production_problem(settings)
    if problem is not None:
        raise SystemExit(f"APP_ENV=production refuses to start: {problem}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, checked once at startup: a bad value or a toy in production exits with one line."""
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]).upper()
        raise SystemExit(f"invalid setting {name}: {err['msg']}") from None
    refuse_toys(settings)
    return settings


def _settings_classes() -> list[type[BaseSettings]]:
    """Settings, then every `app/<package>/config.py` settings class this project has (memory, jobs, telemetry)."""
    import importlib
    import pkgutil

    import app

    found: list[type[BaseSettings]] = [Settings]
    for package in sorted(m.name for m in pkgutil.iter_modules(app.__path__) if m.ispkg):
        try:
            module = importlib.import_module(f"app.{package}.config")
        except ModuleNotFoundError:
            continue
        found += [value for value in vars(module).values() if isinstance(value, type)
                  and issubclass(value, BaseSettings) and value.__module__ == module.__name__]
    return found


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Field name -> the environment variable it is read from (its first alias, if it has any)."""
    names = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            alias = next((c for c in alias.choices if isinstance(c, str)), None)
        names[name] = (alias if isinstance(alias, str) else name).upper()
    return names


def env_example() -> str:
    """Every setting as NAME=default, with its description: `.env.example` lists the same names
    (tests/test_env_example.py compares them)."""
    import json

    lines = ["# Every setting with its default (python -m app.settings --env-example). Copy to .env and change",
             "# what you need; with no provider key set, the offline `fake` provider answers. Never commit .env."]
    seen: set[str] = set()
    for cls in _settings_classes():
        lines.append(f"\n# --- {cls.__name__}")
        names = env_names(cls)
        for name, field in cls.model_fields.items():
            if names[name] in seen:  # read by two classes (OPENAI_API_KEY, TRACE_CONTENT): listed once
                continue
            seen.add(names[name])
            default = field.get_default(call_default_factory=True)
            if default is None or isinstance(default, SecretStr):
                value = ""
            elif isinstance(default, bool):
                value = str(default).lower()
            elif isinstance(default, list | dict):
                value = json.dumps(default, separators=(",", ":"))
            else:
                value = str(default)
            if field.description:
                lines.append(f"# {field.description}")
            lines.append(f"{names[name]}={value}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--env-example"]:
        sys.exit("usage: python -m app.settings --env-example > .env.example")
    sys.stdout.write(env_example())
