"""ws-gateway simulator: synthetic Bybit v5 market or recording playback over ZMQ, with faults.

Modules: `config` (SimConfig), `synthetic` (market and frames), `playback` (recordings), `faults`
(injection), `server` (GatewaySim: XPUB + control REP). Import them directly; this package stays
import-light so the CLI can load configs without zmq.
"""
