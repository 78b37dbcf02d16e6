"""The OpenAPI 3.1 document of the shard API (GET /openapi.json); tests validate real responses against it."""

from __future__ import annotations

from typing import Any

#: ISO-8601 UTC with nanoseconds, as the API writes it: ``2023-11-14T22:13:20.123456789Z``.
ISO_NS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$"

#: What a registry hash looks like (hex SHA-256 of the canonical text).
HASH_PATTERN = r"^[0-9a-f]{16,128}$"

#: Symbols: upper-case letters and digits, then also ``-`` or ``_`` (``BTCUSDT``, ``BTC-26DEC25``).
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,63}$"

JSON = "application/json"
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml")


def schema_ref(name: str) -> dict[str, str]:
    """Return a reference to component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def closed_object(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return a closed object schema requiring every property not listed in `optional`."""
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": [k for k in props if k not in optional]}


def json_body(description: str, schema: str) -> dict[str, Any]:
    """Return a response with a JSON body of component `schema`."""
    return {"description": description, "content": {JSON: {"schema": schema_ref(schema)}}}


def error_responses(**codes: str) -> dict[str, Any]:
    """Return error responses (JSON `Error` bodies) keyed by status code, plus the 500 every route has."""
    codes.setdefault("e500", "A bug (logged); the body says so.")
    return {k[1:]: json_body(v, "Error") for k, v in codes.items()}


_STRING, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_HASH = {"type": "string", "pattern": HASH_PATTERN, "description": "Registry content hash (hex)."}
_ISO = {"type": "string", "pattern": ISO_NS_PATTERN, "description": "ISO-8601 UTC, nanoseconds."}
_NAMES = {"type": "array", "items": _STRING, "description": "Feature names in column order."}

SCHEMAS: dict[str, Any] = {
    "Error": closed_object({
        "error": {"type": "string", "minLength": 1, "description": "What went wrong, in one line."},
        "owner": {**closed_object({"shard": _STRING, "url": _STRING}),
                  "description": "404 on /features/latest: the shard owning the symbol, when known."},
    }, optional=("owner",)),
    "Latest": closed_object({
        "ts": {**_ISO, "description": "Tick boundary, ISO-8601 UTC with nanoseconds."},
        "ts_ns": {**_INT, "description": "Tick boundary, ns since the epoch."},
        "symbol": _STRING,
        "registry_hash": _HASH,
        "book_valid": {"type": "integer", "enum": [0, 1], "description": "0 while the book resyncs."},
        "features": {"type": "object", "additionalProperties": {"type": ["number", "null"]},
                     "description": "Feature name → value in column order; NaN and ±inf as null."},
    }),
    "Schema": closed_object({
        "registry_hash": _HASH,
        "names": _NAMES,
        "registry": {**_STRING, "description": "The registry's canonical text (YAML)."},
        "known_hashes": {"type": "array", "items": _HASH,
                         "description": "Every registry hash this shard's journal has used."},
    }),
    "ReloadResult": closed_object({
        "registry_hash": _HASH,
        "effective_ts": {**_ISO, "description": "The tick the new registry applies from."},
        "effective_ns": {**_INT, "description": "That tick in ns since the epoch."},
        "names": _NAMES,
    }),
    "GatewayHealth": closed_object({"up": _BOOL, "since": _STRING, "since_ns": _INT}),
    "BookHealth": closed_object({"valid": _BOOL, "last_event_age_s": {"type": ["number", "null"]}}),
    "JournalHealth": closed_object({"next_seq": _INT, "lag_records": _INT, "bytes": _INT}),
    "CheckpointHealth": closed_object({"seq": _INT, "age_s": {"type": "number"}}),
    "Health": closed_object({
        "shard": _STRING,
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "gateway": schema_ref("GatewayHealth"),
        "books": {"type": "object", "additionalProperties": schema_ref("BookHealth"),
                  "description": "Per owned symbol: feature book valid, seconds since its last event."},
        "journal": schema_ref("JournalHealth"),
        "checkpoint": {"oneOf": [schema_ref("CheckpointHealth"), {"type": "null"}],
                       "description": "The newest checkpoint; null before the first."},
    }),
    "DatasetAccepted": closed_object({
        "dataset_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "status": {"type": "string", "enum": ["queued", "running", "done"]},
    }),
    "DatasetStatus": {"type": "object", "required": ["dataset_id", "status"], "properties": {
        "dataset_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "progress": {"type": "object", "properties": {"done": _INT, "total": _INT}},
        "error": {**_STRING, "description": "Why a failed build failed."},
        "manifest": {"type": "object", "description": "The dataset's _manifest.json (README *Datasets*)."},
        "params": {"type": "object"}, "path": _STRING,
    }, "description": "A build's state; `manifest` once it is done."},
    "DatasetList": closed_object({"datasets": {"type": "array", "items": {"type": "object", "required": ["dataset_id", "status"]}}}),
}

_DATASET_PARAMS = [
    {"name": n, "in": "query", "required": n in ("from", "to"), "schema": {"type": "string"}, "description": d}
    for n, d in (("from", "First tick, inclusive (ISO-8601 or epoch s/ms/ns)."), ("to", "Last tick, exclusive."),
                 ("symbols", "Comma-separated; default all of the shard's."),
                 ("horizons", "Target horizons, e.g. 60s,5m (default 60s)."),
                 ("threshold_bps", "Label threshold in bps (default 2)."),
                 ("drop_invalid", "true: leave out rows with an invalid book."))]

_SYMBOL_PARAM = {"name": "symbol", "in": "query", "required": True,
                 "schema": {"type": "string", "pattern": SYMBOL_PATTERN}, "description": "e.g. BTCUSDT"}
_HASH_PARAM = {"name": "registry_hash", "in": "query", "required": False, "schema": _HASH,
               "description": "A registry hash this journal has used; default: the one in force."}

PATHS: dict[str, Any] = {
    "/features/latest": {"get": {
        "summary": "The newest feature vector of one symbol this shard owns.",
        "parameters": [_SYMBOL_PARAM],
        "responses": {
            "200": json_body("The vector.", "Latest"),
            **error_responses(e400="No symbol, an empty or a malformed one.",
                      e404="This shard does not own the symbol; names the owner when known.",
                      e503="The symbol is owned but has no vector yet."),
        }}},
    "/features/schema": {"get": {
        "summary": "A registry: hash, feature names in column order, canonical text.",
        "parameters": [_HASH_PARAM],
        "responses": {
            "200": json_body("The registry.", "Schema"),
            **error_responses(e400="A malformed registry_hash.", e404="A registry_hash this journal never used.",
                      e503="No registry in force yet."),
        }}},
    "/feature-registry/reload": {"post": {
        "summary": "Validate a registry and journal it; it applies from the next tick.",
        "description": "With a token configured, needs `Authorization: Bearer <token>`.",
        "security": [{"bearer": []}, {}],
        "requestBody": {"required": False, "description": "A registry YAML; no body: re-read the configured file.",
                        "content": {t: {"schema": {"type": "string"}} for t in YAML_TYPES}},
        "responses": {
            "200": json_body("Accepted.", "ReloadResult"),
            **error_responses(e400="The registry is invalid (the message says where); the old one stays.",
                      e401="Missing or wrong bearer token.",
                      e413="The body is larger than the configured limit.",
                      e415="The body is not YAML (names the Content-Type sent)."),
        }}},
    "/dataset/build": {"post": {
        "summary": "Build a labelled dataset of [from, to) in a separate process; 202 with its id.",
        "description": "Parameters in the query string or as a JSON object body. The same request on the same "
                       "data gives the same id (while running or done). On completion the shard publishes "
                       "`features.dataset.ready` on its publish endpoint. With a token configured, needs "
                       "`Authorization: Bearer <token>`.",
        "security": [{"bearer": []}, {}],
        "parameters": _DATASET_PARAMS,
        "requestBody": {"required": False, "content": {JSON: {"schema": {"type": "object"}}}},
        "responses": {
            "202": json_body("Accepted (or already running or done).", "DatasetAccepted"),
            **error_responses(e400="A bad parameter, an unknown symbol, no data in the range, a range beyond what is stored.",
                      e401="Missing or wrong bearer token."),
        }}},
    "/dataset/list": {"get": {
        "summary": "Every dataset and build of this shard.",
        "responses": {"200": json_body("The datasets.", "DatasetList"), **error_responses()}}},
    "/dataset/{dataset_id}": {"get": {
        "summary": "A build's status and progress, and the manifest once done.",
        "parameters": [{"name": "dataset_id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}],
        "responses": {"200": json_body("The build.", "DatasetStatus"),
                      **error_responses(e400="Not a dataset id.", e404="No such dataset.")}}},
    "/health": {"get": {
        "summary": "Gateway, books, journal and checkpoint state (always 200; see `status`).",
        "responses": {"200": json_body("The shard's health.", "Health"), **error_responses()}}},
    "/metrics": {"get": {
        "summary": "Prometheus metrics (text format 0.0.4).",
        "responses": {"200": {"description": "The metrics.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **error_responses()}}},
    "/openapi.json": {"get": {
        "summary": "This document.",
        "responses": {"200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {"type": "object"}}}},
                      **error_responses()}}},
}


def openapi_document(title: str = "Feature Service shard API", version: str = "1") -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every route."""
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "One shard's REST API. Errors are JSON `{\"error\": reason}` bodies; "
                                "unknown routes give 404 and wrong methods 405 in the same shape."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": PATHS,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
