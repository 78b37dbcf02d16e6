"""The ws-gateway simulator, synthetic records and the demo."""
