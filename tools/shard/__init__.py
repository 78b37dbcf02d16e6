"""The shard process: composition root wiring journal, bridge, engine, publisher and API."""
