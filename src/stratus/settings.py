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

API_SERVICES = ("identity", "image", "compute", "network", "volume", "dashboard", "novncproxy")
ALL_SERVICES = API_SERVICES + ("scheduler", "conductor", "compute-agent", "network-agent",
                                "guest-seed")
# What a process runs when the settings name nothing: every API plus the
# compute roles behind the compute API, plus guest-seed (a no-op unless the
# compute agent runs the QEMU driver: then it uploads the default guest image
# in the background after start).
DEFAULT_SERVICES = API_SERVICES + ("scheduler", "conductor", "compute-agent", "guest-seed")


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
    novncproxy: int = Field(6080, ge=1, le=65535)

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
    # Fernet keys kept: primary + staged + (max_active_keys - 2) secondaries.
    max_active_keys: int = Field(3, ge=2, le=100)
    # How long a validated token is trusted without looking again. In the identity
    # process every identity write drops the cache at once; this bounds how stale
    # other processes (remote validators, other identity workers) can be.
    token_cache_ttl: float = Field(30.0, ge=0, description="seconds")
    # Password of the service users (compute, image, network, volume). Empty means:
    # generate at first bootstrap, store 0600 in the data dir.
    service_password: str = ""
    # Where a process without identity finds it (default: this host's identity port).
    auth_url: str = ""
    # How long after expiry `GET /v3/auth/tokens?allow_expired=1` still validates a token.
    allow_expired_window: int = Field(172800, ge=0, description="seconds, ?allow_expired")
    # Keystone's [DEFAULT] list_limit: longer identity lists are cut, with "truncated": true.
    list_limit: int = Field(0, ge=0, description="0 = unlimited")
    # Trusts (OS-TRUST): how deep a trust may be redelegated.
    max_redelegation_count: int = Field(3, ge=0)
    # Keystone's [security_compliance]; 0 or "" disables each one.
    lockout_failure_attempts: int = Field(0, ge=0)
    lockout_duration: int = Field(1800, ge=1, description="seconds")
    password_expires_days: int = Field(0, ge=0)
    unique_last_password_count: int = Field(0, ge=0)
    minimum_password_age: int = Field(0, ge=0, description="days")
    password_regex: str = ""
    password_regex_description: str = ""


class ImageSettings(_Section):
    # Relative to data_dir unless absolute.
    store_dir: str = "images"
    image_count_quota: int = Field(-1, ge=-1)
    image_size_total_quota: int = Field(-1, ge=-1, description="bytes, -1 unlimited")
    image_member_quota: int = Field(128, ge=-1)
    image_property_quota: int = Field(128, ge=-1)
    image_tag_quota: int = Field(128, ge=-1)
    # Hash every byte served and abort the transfer when the data no longer
    # matches its checksum (costs one md5 pass per download).
    verify_on_download: bool = True
    # Bytes gathered before a write+hash round; larger means fewer thread hops.
    write_chunk: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    read_chunk: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    # Write image data with O_DIRECT (where the filesystem allows). Uploads are
    # fsynced before use anyway; skipping the page cache saves ~0.8 CPU-s/GiB
    # per upload and keeps a big upload from evicting the rest of the cache,
    # but the first download then reads the disk and pays more than that
    # back (bench/image_stream.py, 1 GiB). Worth it for upload-heavy hosts.
    direct_io: bool = False
    list_limit_default: int = Field(25, ge=1)
    list_limit_max: int = Field(1000, ge=1)
    disk_formats: tuple[str, ...] = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2",
                                     "vdi", "iso", "ploop")
    container_formats: tuple[str, ...] = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker",
                                          "compressed")


class ComputeSettings(_Section):
    host: str = ""  # defaults to the machine's hostname
    heartbeat_interval: float = Field(10.0, gt=0)
    service_down_time: float = Field(60.0, gt=0)
    default_availability_zone: str = "nova"
    # How many fake compute hosts the all-in-one runs (named host, host-2, ...);
    # each reports the resources below (0 = this machine's own).
    fake_hosts: int = Field(1, ge=1, le=10000)
    fake_vcpus: int = Field(0, ge=0)
    fake_memory_mb: int = Field(0, ge=0)
    fake_disk_gb: int = Field(0, ge=0)
    # Seconds the fake driver takes per operation ({"spawn": 1.5}, "*" for all): to
    # mimic a real host or widen race windows in tests.
    fake_latency: dict[str, float] = Field(default_factory=dict)
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)
    reserved_host_memory_mb: int = Field(512, ge=0)
    reserved_host_disk_gb: int = Field(0, ge=0)
    reserved_host_cpus: int = Field(0, ge=0)
    allow_resize_to_same_host: bool = True
    # Seconds before a resized server is confirmed automatically (0: never).
    resize_confirm_window: int = Field(0, ge=0)
    # Seconds a shelved server keeps its host (0: offload at once, -1: never).
    shelved_offload_time: int = Field(0, ge=-1)
    power_sync_interval: float = Field(60.0, gt=0)
    # Every guest gets a config drive (Nova's force_config_drive).
    force_config_drive: bool = False
    # Seconds the conductor waits for a host's long steps: a spawn (which may fetch a
    # large image), preparing a migration target, moving a guest (Nova's long_rpc_timeout).
    long_rpc_timeout: float = Field(1800.0, gt=0)
    # How often a running live migration's progress is copied to its migration record.
    migration_progress_interval: float = Field(1.0, gt=0)
    # Where the QEMU driver keeps guests (Nova's instances_path), relative to the data
    # dir unless absolute. One directory for every host of this data dir is shared
    # storage (live migration moves memory only); "{host}" in it gives each host its
    # own directory, e.g. "instances/{host}" (live migration then copies the disk too).
    instances_path: str = "instances"
    # Live migration speed cap in MiB/s, memory and disk copy alike (0: unlimited).
    live_migration_bandwidth: int = Field(0, ge=0)
    scheduler_max_attempts: int = Field(3, ge=1)
    scheduler_host_subset_size: int = Field(1, ge=1)
    # Weigh at most this many passing hosts per decision (0: all); see scheduler/select.py.
    scheduler_max_candidates: int = Field(1000, ge=0)
    ram_weight_multiplier: float = 1.0
    cpu_weight_multiplier: float = 1.0
    disk_weight_multiplier: float = 1.0
    # Default quotas (per project; -1 unlimited).
    quota_instances: int = Field(10, ge=-1)
    quota_cores: int = Field(20, ge=-1)
    quota_ram: int = Field(51200, ge=-1, description="MiB")
    quota_key_pairs: int = Field(100, ge=-1)
    quota_server_groups: int = Field(10, ge=-1)
    quota_server_group_members: int = Field(10, ge=-1)
    quota_metadata_items: int = Field(128, ge=-1)
    quota_injected_files: int = Field(5, ge=-1)
    quota_injected_file_content_bytes: int = Field(10240, ge=-1)
    quota_injected_file_path_bytes: int = Field(255, ge=-1)
    # The external network the os-floating-ips proxy allocates from when no pool is named.
    default_floating_pool: str = "nova"
    # Seconds a build waits for network-vif-plugged of its ports; 0 does not wait.
    vif_plugging_timeout: float = Field(300.0, ge=0)

    @field_validator("instances_path")
    @classmethod
    def _host_template(cls, value: str) -> str:
        try:
            value.format(host="h")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{host}} may be substituted ({exc})") from None
        if not value.strip():
            raise ValueError("must name a directory")
        return value


class NetworkSettings(_Section):
    # Network types a project network gets, tried in order, when no provider
    # attributes are given.
    tenant_network_types: tuple[str, ...] = ("vxlan",)
    # "physnet:min:max" (or just "physnet" for flat-only use); VLAN ids are allocated from these.
    network_vlan_ranges: tuple[str, ...] = ("physnet1:100:999",)
    # Physical networks flat networks may use; "*" allows any name.
    flat_networks: tuple[str, ...] = ("*",)
    # "min:max" VXLAN VNI ranges.
    vni_ranges: tuple[str, ...] = ("1:65535",)
    global_physnet_mtu: int = Field(1500, ge=68)
    base_mac: str = "fa:16:3e:00:00:00"
    dns_domain: str = "openstacklocal."
    # Run a no-op network agent for this host inside the network API process
    # when this process does not run the network-agent service itself.
    embedded_agent: bool = True
    host: str = ""  # agent host name; defaults to the machine's hostname
    # Send os-server-external-events (vif plugged, network changed) to compute.
    notify_compute: bool = True
    # Seconds between an agent's state reports (Neutron's [agent] report_interval), and
    # how old its last report may be before the API shows it dead (Neutron's
    # agent_down_time; keep it at least twice report_interval).
    report_interval: float = Field(30.0, gt=0)
    agent_down_time: float = Field(75.0, gt=0)
    # Default quotas (-1 unlimited); per-project values live in the database.
    quota_network: int = Field(100, ge=-1)
    quota_subnet: int = Field(100, ge=-1)
    quota_port: int = Field(500, ge=-1)
    quota_router: int = Field(10, ge=-1)
    quota_floatingip: int = Field(50, ge=-1)
    quota_security_group: int = Field(10, ge=-1)
    quota_security_group_rule: int = Field(100, ge=-1)
    list_limit_max: int = Field(1000, ge=1)

    @field_validator("tenant_network_types", "network_vlan_ranges", "flat_networks",
                     "vni_ranges", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        return value


class ConsoleSettings(_Section):
    """Remote consoles: tokens (Nova's [consoleauth]) and the noVNC proxy (Nova's [vnc])."""

    # Seconds a console URL's token stays valid.
    token_ttl: int = Field(600, ge=1)
    # The page a console URL opens; empty: http://<public host>:<ports.novncproxy>/vnc_lite.html.
    novncproxy_base_url: str = ""
    # noVNC's pages (Debian's novnc package), served by the proxy.
    novnc_dir: Path = Path("/usr/share/novnc")
    # Origins (host names) besides the proxy's own that may open console websockets.
    allowed_origins: tuple[str, ...] = ()

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        return value


class Settings(_Section):
    bind_host: str = "127.0.0.1"
    # Host name put in catalog URLs; defaults to bind_host (or 127.0.0.1 for 0.0.0.0).
    public_host: str = ""
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""  # empty: SQLite in data_dir
    bus_url: str = "memory://"
    services: tuple[str, ...] = DEFAULT_SERVICES
    hypervisor: Hypervisor = Hypervisor.AUTO
    dataplane: Dataplane = Dataplane.AUTO
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_request_body: int = Field(1024 * 1024, ge=1024, description="bytes, JSON bodies")
    rpc_timeout: float = Field(60.0, gt=0)
    ports: Ports = Ports()
    identity: IdentitySettings = IdentitySettings()
    image: ImageSettings = ImageSettings()
    compute: ComputeSettings = ComputeSettings()
    network: NetworkSettings = NetworkSettings()
    console: ConsoleSettings = ConsoleSettings()

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
