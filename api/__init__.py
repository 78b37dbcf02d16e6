"""The shard's outward faces, as a library the shard process (`tools/shard/`) wires up.

- `api.wire`: the features.live message format shared with subscribers (and a subscriber example).
- `api.publisher`: `Publisher`, the non-blocking features.live socket.
- `api.metrics`: `ShardMetrics`, the Prometheus metrics on their own registry.
- `api.view`: `ShardView`, what the REST API reads from the shard.
- `api.app`: `create_app(...)`, the aiohttp app (routes, JSON errors, bearer auth on POST);
  `api.openapi` its OpenAPI 3.1 document; `api.server.start_server` serves it in the running loop.
"""
