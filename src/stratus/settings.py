"""One typed settings object for a Stratus process.

Sources, later ones winning:

1. defaults below;
2. a TOML file (``<data dir>/stratus.toml`` unless ``--config`` names another);
3. ``STRATUS_*`` environment variables. Nested keys use a double underscore:
   ``STRATUS_PORTS__IDENTITY=5001``, ``STRATUS_IDENTITY__ADMIN_PASSWORD=...``.
   Lists are comma separated: ``STRATUS_SERVICES=identity,image``.

Any invalid value raises :class:`ConfigError` naming the setting, so a bad
config stops start-up with a message a person can act on.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "STRATUS_"

API_SERVICES = ("identity", "image", "compute", "network", "volume", "dashboard")
ALL_SERVICES = API_SERVICES + ("scheduler", "conductor", "compute-agent", "network-agent")


class ConfigError(Exception):
    """A setting is missing or has a value we cannot use."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stratus"


class Hypervisor(StrEnum):
    AUTO = "auto"
    FAKE = "fake"
    QEMU = "qemu"


class Dataplane(StrEnum):
    AUTO = "auto"
    NOOP = "noop"
    LINUX = "linux"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ports(_Section):
    identity: int = Field(5000, ge=1, le=65535)
    compute: int = Field(8774, ge=1, le=65535)
    image: int = Field(9292, ge=1, le=65535)
    network: int = Field(9696, ge=1, le=65535)
    volume: int = Field(8776, ge=1, le=65535)
    dashboard: int = Field(8080, ge=1, le=65535)

    def of(self, service: str) -> int:
        return int(getattr(self, service))


class IdentitySettings(_Section):
    admin_user: str = "admin"
    admin_project: str = "admin"
    # Empty means: generate one at first bootstrap and store it in the data dir.
    admin_password: str = ""
    region: str = "RegionOne"
    token_expiration: int = Field(3600, ge=60, description="seconds")
    password_hash_rounds: int = Field(12, ge=4, le=31, description="bcrypt cost")


class ImageSettings(_Section):
    # Relative to data_dir unless absolute.
    store_dir: str = "images"
    image_count_quota: int = Field(-1, ge=-1)
    image_size_total_quota: int = Field(-1, ge=-1, description="bytes, -1 unlimited")


class ComputeSettings(_Section):
    host: str = ""  # defaults to the machine's hostname
    heartbeat_interval: float = Field(10.0, gt=0)
    service_down_time: float = Field(60.0, gt=0)


class Settings(_Section):
    bind_host: str = "127.0.0.1"
    # Host name put in catalog URLs; defaults to bind_host (or 127.0.0.1 for 0.0.0.0).
    public_host: str = ""
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""  # empty: SQLite in data_dir
    bus_url: str = "memory://"
    services: tuple[str, ...] = API_SERVICES
    hypervisor: Hypervisor = Hypervisor.AUTO
    dataplane: Dataplane = Dataplane.AUTO
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_request_body: int = Field(1024 * 1024, ge=1024, description="bytes, JSON bodies")
    rpc_timeout: float = Field(60.0, gt=0)
    ports: Ports = Ports()
    identity: IdentitySettings = IdentitySettings()
    image: ImageSettings = ImageSettings()
    compute: ComputeSettings = ComputeSettings()

    @field_validator("services", mode="before")
    @classmethod
    def _split_services(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in ALL_SERVICES]
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {', '.join(ALL_SERVICES)}")
        return value

    @field_validator("bus_url")
    @classmethod
    def _bus_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "amqp://", "amqps://")):
            raise ValueError("must start with memory://, amqp:// or amqps://")
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'stratus.db'}"

    @property
    def advertised_host(self) -> str:
        if self.public_host:
            return self.public_host
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "::", "") else self.bind_host

    def endpoint(self, service: str) -> str:
        """The base URL a client uses to reach an API service of this process."""
        return f"http://{self.advertised_host}:{self.ports.of(service)}"


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return result


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        name = ".".join(str(p) for p in item["loc"]) or "(root)"
        env = ENV_PREFIX + "__".join(str(p) for p in item["loc"]).upper()
        if item["type"] == "extra_forbidden":
            lines.append(f"setting '{name}' is not a known setting")
        else:
            lines.append(f"setting '{name}' (env {env}): {item['msg']} (got {item.get('input')!r})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    config: Path | str | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings from file, environment and explicit overrides."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    path: Path | None = Path(config) if config else None
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    if path is None:
        data_dir = env.get(ENV_PREFIX + "DATA_DIR") or overrides.get("data_dir")
        candidate = Path(data_dir or default_data_dir()) / "stratus.toml"
        path = candidate if candidate.exists() else None
    elif not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    data = _merge(data, _env_overrides(env))
    data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
