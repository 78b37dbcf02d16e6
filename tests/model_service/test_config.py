"""`load_config`: the documented defaults, and ConfigErrors that name the file and the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_service.config import load_config
from tools.typedconfig import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "model-service.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_of_an_empty_file(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, ""))
    assert cfg.data_dir == "data"
    assert Path(cfg.datasets_dir) == Path("data") / "datasets"
    assert cfg.models_dir == Path("data") / "models"
    assert cfg.api.port == 8090
    assert cfg.api.host == "127.0.0.1"
    assert cfg.invalid_book == "skip"
    assert cfg.subscribe.endpoints == ("tcp://127.0.0.1:5560",)
    assert cfg.subscribe.symbols == ()
    assert cfg.publish.endpoint == "tcp://127.0.0.1:5570"
    assert (cfg.training.workers, cfg.training.nice) == (1, 10)
    assert cfg.auto_train.enabled is False
    assert cfg.auto_train.model == {"kind": "auto"}


def test_datasets_dir_follows_data_dir(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "data_dir: /srv/fs\n"))
    assert Path(cfg.datasets_dir) == Path("/srv/fs/datasets")
    assert cfg.models_dir == Path("/srv/fs/models")
    cfg = load_config(_write(tmp_path, "data_dir: /srv/ms\ndatasets_dir: /srv/shard/datasets\n"))
    assert cfg.datasets_dir == "/srv/shard/datasets"
    assert cfg.models_dir == Path("/srv/ms/models")


def test_a_full_file(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, """
data_dir: /d
subscribe:
  endpoints: [tcp://10.0.0.1:5560, tcp://10.0.0.2:5560]
  symbols: [BTCUSDT, ETHUSDT]
publish:
  endpoint: tcp://0.0.0.0:5571
api:
  port: 9000
invalid_book: score
training:
  workers: 2
  nice: 19
auto_train:
  enabled: true
  horizon: 60s
  activate: true
"""))
    assert cfg.subscribe.endpoints == ("tcp://10.0.0.1:5560", "tcp://10.0.0.2:5560")
    assert cfg.subscribe.symbols == ("BTCUSDT", "ETHUSDT")
    assert cfg.api.port == 9000
    assert cfg.invalid_book == "score"
    assert (cfg.training.workers, cfg.training.nice) == (2, 19)
    assert cfg.auto_train.enabled and cfg.auto_train.horizon == "60s" and cfg.auto_train.activate


def test_api_port_default_kept_when_other_api_keys_are_given(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "api:\n  token: s3cret\n"))
    assert cfg.api.token == "s3cret"
    assert cfg.api.port == 8090


@pytest.mark.parametrize(("text", "key", "what"), [
    ("colour: blue\n", "colour", "unknown key"),
    ("subscribe:\n  topics: [a]\n", "subscribe.topics", "unknown key"),
    ("subscribe:\n  endpoints: [tcp://127.0.0.1:5560, 'http://x:1']\n", "subscribe.endpoints[1]",
     "not a ZMQ endpoint"),
    ("subscribe:\n  endpoints: [tcp://127.0.0.1:5560, tcp://127.0.0.1:99999]\n", "subscribe.endpoints[1]",
     "not a ZMQ endpoint"),
    ("subscribe:\n  endpoints: [tcp://127.0.0.1:5560, tcp://127.0.0.1:5560]\n", "subscribe.endpoints",
     "listed twice"),
    ("subscribe:\n  endpoints: []\n", "subscribe.endpoints", "at least one"),
    ("subscribe:\n  symbols: [btcusdt]\n", "subscribe.symbols[0]", "upper-case"),
    ("subscribe:\n  symbols: [BTCUSDT, BTCUSDT]\n", "subscribe.symbols", "listed twice"),
    ("invalid_book: maybe\n", "invalid_book", "'maybe' is not one of"),
    ("publish:\n  endpoint: tcp://127.0.0.1:5560\n", "publish.endpoint", "also in subscribe.endpoints"),
    ("subscribe:\n  endpoints: [tcp://1.2.3.4:7]\npublish:\n  endpoint: tcp://1.2.3.4:7\n", "publish.endpoint",
     "also in subscribe.endpoints"),
    ("auto_train:\n  enabled: true\n", "auto_train.horizon", "required"),
    ("training:\n  nice: 30\n", "training.nice", "not within [0, 19]"),
    ("training:\n  workers: 0\n", "training.workers", "not within"),
    ("training:\n  nice: ten\n", "training.nice", "expected int"),
    ("api:\n  port: 70000\n", "api.port", "not within"),
    ("data_dir: ''\n", "data_dir", "must not be empty"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, what: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: {key}:"), msg
    assert what in msg


def test_unknown_key_lists_known_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="known keys here: .*invalid_book"):
        load_config(_write(tmp_path, "colour: blue\n"))


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "subscribe: [\n")
    with pytest.raises(ConfigError, match="not valid YAML") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
