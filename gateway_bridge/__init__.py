"""gateway_bridge."""
