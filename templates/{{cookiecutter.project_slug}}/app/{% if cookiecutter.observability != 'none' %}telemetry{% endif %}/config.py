"""Where spans go, from the standard OTEL_* variables plus the backend's own ones."""

{% if cookiecutter.observability == 'langfuse' %}import base64
{% endif %}from typing import Literal

from pydantic import {% if cookiecutter.observability == 'langfuse' %}AliasChoices, {% endif %}Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    otel_service_name: str = "{{ cookiecutter.project_slug }}"
    otel_sdk_disabled: bool = False
    otel_exporter_otlp_endpoint: str | None = None  # base URL; /v1/traces is appended
    otel_exporter_otlp_traces_endpoint: str | None = None  # full URL, used as is
    otel_exporter_otlp_headers: str | None = None  # "key=value,key2=value2"
    otlp_timeout_s: float = Field(default=5.0, gt=0, le=60)
    trace_content: Literal["full", "redacted", "metadata"] = "{{ cookiecutter.trace_content }}"
    # json: one JSON object per log line with request_id, trace_id and span_id; text: leave logging as it is.
    log_format: Literal["json", "text"] = "json"
{%- if cookiecutter.observability == 'langfuse' %}

    langfuse_host: str = Field(
        default="https://cloud.langfuse.com", validation_alias=AliasChoices("LANGFUSE_HOST", "LANGFUSE_BASE_URL")
    )
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = None
{%- endif %}
{%- if cookiecutter.observability == 'phoenix' %}

    phoenix_collector_endpoint: str | None = None  # e.g. http://localhost:6006
    phoenix_api_key: str | None = None
{%- endif %}

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for item in (self.otel_exporter_otlp_headers or "").split(","):
            if "=" in item:
                key, value = item.split("=", 1)
                headers[key.strip()] = value.strip()
        return headers

    def traces_endpoint(self, backend: str) -> tuple[str | None, dict[str, str]]:
        """(OTLP/HTTP traces URL, headers), or (None, {}) when nothing says where to send spans."""
        headers = self._headers()
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint, headers
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces", headers
{%- if cookiecutter.observability == 'langfuse' %}
        if self.langfuse_public_key and self.langfuse_secret_key:
            token = base64.b64encode(f"{self.langfuse_public_key}:{self.langfuse_secret_key}".encode()).decode()
            headers.setdefault("Authorization", f"Basic {token}")
            return self.langfuse_host.rstrip("/") + "/api/public/otel/v1/traces", headers
{%- endif %}
{%- if cookiecutter.observability == 'phoenix' %}
        if self.phoenix_collector_endpoint:
            if self.phoenix_api_key:
                headers.setdefault("Authorization", f"Bearer {self.phoenix_api_key}")
            return self.phoenix_collector_endpoint.rstrip("/") + "/v1/traces", headers
{%- endif %}
        return None, {}

    @staticmethod
    def missing_destination(backend: str) -> str:
        hints = {
            "otel": "set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://otel-collector:4318)",
            "langfuse": "set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_HOST when self-hosting)",
            "phoenix": "set PHOENIX_COLLECTOR_ENDPOINT (e.g. http://phoenix:6006)",
        }
        return f"spans are recorded but not exported: {hints.get(backend, hints['otel'])}"


