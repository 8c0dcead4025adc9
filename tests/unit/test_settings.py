from pathlib import Path

import pytest

from stratus.settings import ConfigError, Hypervisor, load_settings


def test_defaults_bind_loopback_and_use_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = load_settings(environ={}, data_dir=str(tmp_path))
    assert s.bind_host == "127.0.0.1"
    assert s.ports.identity == 5000 and s.ports.compute == 8774 and s.ports.image == 9292
    assert s.ports.network == 9696 and s.ports.volume == 8776
    assert s.db_url == f"sqlite+aiosqlite:///{tmp_path / 'stratus.db'}"
    assert s.bus_url == "memory://"


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('bind_host = "127.0.0.2"\nhypervisor = "fake"\n[ports]\nidentity = 6000\n')
    s = load_settings(cfg, environ={"STRATUS_PORTS__IDENTITY": "6001"})
    assert s.bind_host == "127.0.0.2"
    assert s.hypervisor is Hypervisor.FAKE
    assert s.ports.identity == 6001


def test_default_config_file_lives_in_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "stratus.toml").write_text("[ports]\nimage = 9393\n")
    s = load_settings(environ={"STRATUS_DATA_DIR": str(tmp_path)})
    assert s.ports.image == 9393


def test_services_list_from_environment_is_comma_separated() -> None:
    s = load_settings(environ={"STRATUS_SERVICES": "identity, image"})
    assert s.services == ("identity", "image")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STRATUS_PORTS__IDENTITY": "not-a-port"}, "ports.identity"),
        ({"STRATUS_PORTS__COMPUTE": "70000"}, "ports.compute"),
        ({"STRATUS_BUS_URL": "kafka://x"}, "bus_url"),
        ({"STRATUS_SERVICES": "identity,warp-drive"}, "services"),
        ({"STRATUS_HYPERVISOR": "vmware"}, "hypervisor"),
        ({"STRATUS_IDENTITY__TOKEN_EXPIRATION": "5"}, "identity.token_expiration"),
    ],
)
def test_bad_value_is_rejected_with_the_setting_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    assert f"setting '{named}'" in str(err.value)


def test_unknown_setting_in_file_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text("bind_hots = '0.0.0.0'\n")
    with pytest.raises(ConfigError, match="'bind_hots' is not a known setting"):
        load_settings(cfg, environ={})


def test_broken_toml_and_missing_file_are_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text("ports = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_endpoint_advertises_loopback_when_bound_to_all_addresses() -> None:
    s = load_settings(environ={"STRATUS_BIND_HOST": "0.0.0.0"})
    assert s.endpoint("compute") == "http://127.0.0.1:8774"
