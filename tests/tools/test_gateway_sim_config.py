"""Simulator config: plain relative errors, dotted paths however deep it is nested, ranges, symbols."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway_bridge.config import TopicsConfig
from tools.sim.gateway.config import (
    FaultsConfig,
    FaultSpec,
    InstrumentConfig,
    PauseSpec,
    SimConfig,
    SyntheticConfig,
    load_sim_config,
)
from tools.sim.gateway.synthetic import SyntheticMarket
from tools.typedconfig import ConfigError, build


@dataclass(frozen=True)
class Demo:
    """A config nesting the simulator's, as the demo does."""

    gateway_sim: SimConfig = field(default_factory=SimConfig)


@pytest.mark.parametrize("raw, key", [
    ({"synthetic": {"depth": 51}}, "synthetic.depth"),
    ({"synthetic": {"rate_hz": -1}}, "synthetic.rate_hz"),
    ({"synthetic": {"rate_hz": 1e9}}, "synthetic.rate_hz"),
    ({"synthetic": {"messages": -5}}, "synthetic.messages"),
    ({"synthetic": {"weight_book": -1}}, "synthetic.weight_book"),
    ({"synthetic": {"weight_book": 0, "weight_trades": 0, "weight_ticker": 0, "weight_kline": 0}},
     "synthetic.weight_book"),
    ({"synthetic": {"symbols": ["NOPEUSDT"]}}, "synthetic.symbols[0]"),
    ({"synthetic": {"symbols": ["BTCUSDT", "BTCUSDT"]}}, "synthetic.symbols[1]"),
    ({"synthetic": {"symbols": []}}, "synthetic.symbols"),
    ({"synthetic": {"generate_symbols": 10_001}}, "synthetic.generate_symbols"),
    ({"synthetic": {"pregenerate": True}}, "synthetic.pregenerate"),
    ({"synthetic": {"instruments": [{"symbol": "ABCUSDT", "price": "-1"}]}}, "synthetic.instruments[0].price"),
    ({"synthetic": {"instruments": [{"symbol": "ABCUSDT", "funding_interval_h": 3}]}},
     "synthetic.instruments[0].funding_interval_h"),
    ({"synthetic": {"symbols": ["ABCUSDT"], "instruments": [{"symbol": "ABCUSDT", "price": "1.00",
                                                             "tick_size": "0.01"}]}},
     "synthetic.instruments[0].price"),
    ({"faults": {"corrupt": {"prob": 2}}}, "faults.corrupt.prob"),
    ({"faults": {"drop_delta": {"every": -1}}}, "faults.drop_delta.every"),
    ({"faults": {"pause": {"ms": -1}}}, "faults.pause.ms"),
    ({"faults": {"pause": {"prob": 1.5}}}, "faults.pause.prob"),
    ({"faults": {"kill_after": -1}}, "faults.kill_after"),
    ({"faults": {"http_stall_ms": -2}}, "faults.http_stall_ms"),
    ({"faults": {"http_stall_every": 0}}, "faults.http_stall_every"),
    ({"recording": {"speed": -1}}, "recording.speed"),
    ({"recording": {"loops": -1}}, "recording.loops"),
    ({"sndhwm": -1}, "sndhwm"),
    ({"linger_ms": -1}, "linger_ms"),
    ({"linger_ms": 100_000}, "linger_ms"),
    ({"wait_timeout_ms": -1}, "wait_timeout_ms"),
    ({"log_interval_s": 0}, "log_interval_s"),
    ({"endpoint": "tcp://nonsense"}, "endpoint"),
    ({"control_endpoint": "tcp://127.0.0.1:5556"}, "control_endpoint"),
    ({"http_endpoint": "localhost:8080"}, "http_endpoint"),
    ({"http_endpoint": "127.0.0.1:0"}, "http_endpoint"),
    ({"http_endpoint": "127.0.0.1:5558", "synthetic": {"messages": 10, "pregenerate": True}}, "http_endpoint"),
    ({"source": "recording"}, "recording.files"),
])
def test_errors_name_the_full_dotted_key_when_nested(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as top:
        build(SimConfig, raw)
    assert str(top.value).startswith(f"{key}: "), str(top.value)
    with pytest.raises(ConfigError) as nested:
        build(Demo, {"gateway_sim": raw})
    assert str(nested.value) == f"gateway_sim.{top.value}", "the prefix is the nesting, said once"


@pytest.mark.parametrize("make, key", [
    (lambda: SyntheticConfig(depth=51), "depth"),
    (lambda: SyntheticConfig(rate_hz=-1), "rate_hz"),
    (lambda: FaultSpec(prob=2), "prob"),
    (lambda: PauseSpec(ms=-1), "ms"),
    (lambda: FaultsConfig(http_stall_ms=-5), "http_stall_ms"),
    (lambda: InstrumentConfig("ABCUSDT", price="x"), "price"),
    (lambda: SimConfig(linger_ms=-1), "linger_ms"),
])
def test_dataclasses_raise_plain_value_errors_relative_to_themselves(make, key: str) -> None:
    with pytest.raises(ValueError) as e:
        make()
    assert type(e.value) is ValueError and str(e.value).startswith(f"{key}: "), str(e.value)


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "sim.yaml"
    bad.write_text("synthetic:\n  depth: 51\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: synthetic\.depth: 51 is not one of"):
        load_sim_config(str(bad))


def test_generated_symbols_get_instruments_and_frames() -> None:
    cfg = SyntheticConfig(symbols=("BTCUSDT",), generate_symbols=100, depth=50)
    names = cfg.all_symbols()
    assert names[:2] == ("BTCUSDT", "SYM001USDT") and names[-1] == "SYM100USDT" and len(set(names)) == 101
    assert cfg.instrument("SYM001USDT").price == "10.37" and cfg.instrument("SYM100USDT").price == "47.00"
    with pytest.raises(KeyError):
        cfg.instrument("SYM101USDT")
    assert SyntheticConfig(symbols=(), generate_symbols=1000).all_symbols()[0] == "SYM0001USDT"
    market = SyntheticMarket(cfg, TopicsConfig(), 1_786_310_819_000)
    seen = {market.next(1_786_310_819_000).symbol for _ in range(20_000)}
    assert seen == set(names), "every symbol, generated or listed, gets traffic"


def test_generated_symbol_cannot_also_be_listed() -> None:
    inst = InstrumentConfig("SYM001USDT", "10.00", "0.01", "0.1")
    with pytest.raises(ValueError, match=r"^symbols: 'SYM001USDT' clashes"):
        SyntheticConfig(symbols=("SYM001USDT",), instruments=(inst,), generate_symbols=5, depth=50)


def test_example_config_prints_loads_and_has_three_symbols_and_a_gap(tmp_path: Path, capsys) -> None:
    from tools.cli import main

    assert main(["gateway-sim", "--example"]) == 0
    path = tmp_path / "example.yaml"
    path.write_text(capsys.readouterr().out)
    cfg = load_sim_config(str(path))
    assert cfg.synthetic.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT") and cfg.faults.drop_delta.every > 0
    assert cfg.http_endpoint == "127.0.0.1:5558" and cfg.control_endpoint == "tcp://127.0.0.1:5557"


@pytest.mark.parametrize("argv, words", [
    (["gateway-sim"], "--config FILE is required"),
    (["gateway-sim", "--example", "--log-level", "LOUD"], None),
    (["gateway-sim", "--config", "x.yaml", "--log-level", "LOUD"], "'LOUD' is not a logging level"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv: list[str], words: str | None) -> None:
    from tools.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    if words is None:
        assert code == 0  # --example needs no log level
    else:
        assert code == 2 and err.count("\n") == 1 and words in err, err
