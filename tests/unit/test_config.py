from __future__ import annotations

from pathlib import Path

import pytest

from shopflow import config


def test_defaults() -> None:
    s = config.load(environ={})
    assert s.database_url == "sqlite:///shopflow.db"
    assert s.port == 8000


def test_environment_overrides_toml(tmp_path: Path) -> None:
    path = tmp_path / "shopflow.toml"
    path.write_text('[shopflow]\ndatabase_url = "sqlite:///a.db"\nport = 9000\n')
    s = config.load(environ={"SHOPFLOW_PORT": "9100"}, toml_path=path)
    assert s.database_url == "sqlite:///a.db"
    assert s.port == 9100


def test_bad_values_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="SHOPFLOW_PORT: expected an integer, got 'abc'"):
        config.load(environ={"SHOPFLOW_PORT": "abc"})
    with pytest.raises(config.ConfigError, match="SHOPFLOW_EMBEDDED_WORKER: expected a boolean"):
        config.load(environ={"SHOPFLOW_EMBEDDED_WORKER": "maybe"})
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(environ={}, toml_path=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'")
    with pytest.raises(config.ConfigError, match="unknown setting 'colour'"):
        config.load(environ={}, toml_path=unknown)
