"""ws-gateway simulator: synthetic Bybit v5 market or recording playback over ZMQ, with faults."""

from tools.gateway_sim.config import SimConfig, load_sim_config
from tools.gateway_sim.server import GatewaySim
from tools.gateway_sim.synthetic import Frame, SyntheticMarket, generate

__all__ = ["Frame", "GatewaySim", "SimConfig", "SyntheticMarket", "generate", "load_sim_config"]
