"""The catalogue of feature functions the registry may name: their sources and parameters.

This is the declarative half of "one kernel registered in one place": `engine/functions.py`
holds the computation of each entry, keyed by the same name. The registry validates every
feature against `FUNCTIONS` (unknown function, unknown source, missing window, parameter out of
range) before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Input sources a feature may read.
SOURCES = frozenset({"orderbook", "trades", "ticker", "funding", "kline", "clock", "features"})


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a function: its type, default and allowed range or choices."""

    type: type
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class FunctionSpec:
    """What a registry entry naming this function must and may declare."""

    name: str
    sources: frozenset[str]
    doc: str
    #: A window ``(t − W, t]`` is required (``window: 3s``).
    needs_window: bool = False
    #: How many other features it reads through ``inputs:`` (0 for base functions).
    n_inputs: int = 0
    params: dict[str, ParamSpec] = field(default_factory=dict)
    #: History the engine must keep for it: ``trades`` / ``churn`` (events over its window) or
    #: ``ticks`` (per-tick mids and returns over ``params.seconds``); empty for none.
    history: str = ""
    #: Unit of the value (``quote currency``, ``base units``, ``ratio``, ...).
    unit: str = ""
    #: What the value means, in one line for people (``registry functions``, Parquet field metadata).
    description: str = ""


def _f(name: str, sources: str, doc: str, **kw: Any) -> FunctionSpec:
    return FunctionSpec(name=name, sources=frozenset(sources.split(",")), doc=doc, **kw)


_LEVELS = ParamSpec(int, default=5, min=1, max=1000)
_SIDE = ParamSpec(str, choices=("bid", "ask"), required=True)

FUNCTIONS: dict[str, FunctionSpec] = {
    s.name: s
    for s in (
        _f("mid_price", "orderbook", "(best_bid + best_ask) / 2",
           unit="quote currency", description="price halfway between the best bid and the best ask"),
        _f("spread_abs", "orderbook", "best_ask − best_bid",
           unit="quote currency", description="best ask minus best bid"),
        _f("spread_rel", "orderbook", "spread_abs / mid_price",
           unit="ratio", description="bid-ask spread as a fraction of the mid price"),
        _f("log_return", "orderbook", "ln(mid_t / mid_{t−seconds}), mids taken at ticks",
           params={"seconds": ParamSpec(int, required=True, min=1, max=86400)}, history="ticks",
           unit="log return", description="log return of the mid price over the last `seconds` s"),
        _f("volatility", "orderbook", "sample std (ddof=1) of finite 1 s log returns at ticks in (t−seconds, t]",
           params={"seconds": ParamSpec(int, required=True, min=2, max=86400)}, history="ticks",
           unit="log return", description="standard deviation of the 1 s mid-price log returns over the last `seconds` s"),
        _f("vwap", "trades", "Σ p·v / Σ v over trades in the window", needs_window=True, history="trades",
           unit="quote currency", description="volume-weighted average trade price over the window"),
        _f("volume", "trades", "Σ v over trades in the window (base units)", needs_window=True, history="trades",
           unit="base units", description="traded quantity over the window"),
        _f("signed_volume", "trades", "Σ s·v, s = +1 taker Buy, −1 taker Sell", needs_window=True, history="trades",
           unit="base units", description="taker-buy minus taker-sell quantity over the window"),
        _f("buy_sell_ratio", "trades", "buy_vol / sell_vol (NaN when sell_vol = 0)", needs_window=True, history="trades",
           unit="ratio", description="taker-buy quantity divided by taker-sell quantity over the window"),
        _f("trade_count", "trades", "number of trades (not messages) in the window", needs_window=True, history="trades",
           unit="trades", description="number of trades over the window"),
        _f("net_aggressor_pressure", "trades", "Σ s·p·v: buy notional − sell notional", needs_window=True, history="trades",
           unit="quote currency", description="taker-buy minus taker-sell notional over the window"),
        _f("depth", "orderbook", "Σ size of the best `levels` levels of `side`",
           params={"side": _SIDE, "levels": _LEVELS},
           unit="base units", description="resting quantity on the best `levels` levels of `side`"),
        _f("depth_imbalance", "orderbook", "(bid − ask)/(bid + ask) of top-`levels` depth", params={"levels": _LEVELS},
           unit="ratio", description="bid minus ask depth over their sum, top `levels` levels, in [-1, 1]"),
        _f("slope", "orderbook", "OLS slope of size against level index 1..levels on `side`",
           params={"side": _SIDE, "levels": ParamSpec(int, default=10, min=2, max=1000)},
           unit="base units per level", description="how fast resting size grows with depth on `side` (OLS over `levels` levels)"),
        _f("churn_rate", "orderbook", "deltas that changed best bid or ask price in the window, per second",
           needs_window=True, history="churn",
           unit="changes per second", description="rate of book updates that moved the best bid or ask price"),
        _f("liquidity_density", "orderbook", "size on both sides within `bps` of mid",
           params={"bps": ParamSpec(float, default=10.0, min=0.0, max=10000.0)},
           unit="base units", description="resting quantity on both sides within `bps` basis points of the mid"),
        _f("funding_rate", "ticker,funding", "last known funding rate",
           unit="rate per funding interval", description="last known perpetual funding rate (0.0001 = 0.01 %)"),
        _f("time_to_funding", "ticker,funding", "(next_funding_time − t) in minutes",
           unit="minutes", description="time until the next funding settlement on the symbol's interval grid, never negative"),
        _f("time_of_day", "clock", "seconds since UTC midnight / 86400",
           unit="fraction of a UTC day", description="time since UTC midnight: 0 at 00:00, 0.5 at 12:00"),
        _f("ref", "features", "the value of another feature (used with normalise)", n_inputs=1,
           unit="unit of its input", description="another feature's value, used to normalise it under a new name"),
    )
}

#: Normalisation methods a feature may declare (``normalise: {method: zscore, n: 300}``).
NORMALISATIONS = {"zscore": {"n": ParamSpec(int, required=True, min=2, max=100_000)}}

#: Unit and one-line description of each normalisation's output (it replaces the function's unit).
NORMALISATION_DOCS: dict[str, tuple[str, str]] = {
    "zscore": ("standard deviations",
               "(x − mean) / std (ddof=1) of the raw values at the feature's last `n` evaluations"),
}
