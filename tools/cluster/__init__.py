"""Scaling by symbol: the cluster config (which shard owns which symbols) and `cluster plan`."""
