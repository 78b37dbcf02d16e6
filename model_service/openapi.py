"""The OpenAPI 3.1 document of model-service's API (GET /openapi.json); tests validate responses against it."""

from __future__ import annotations

from typing import Any

from api.openapi import (
    HASH_PATTERN,
    JSON,
    SYMBOL_PATTERN,
    closed_object,
    error_responses,
    json_body,
    schema_ref,
)

_STRING, _INT, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}
_ID = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
_HASH = {"type": "string", "pattern": HASH_PATTERN}
_STATUS = {"type": "string", "enum": ["queued", "running", "done", "failed"]}
_PROBS = closed_object({"-1": _NUM, "0": _NUM, "1": _NUM})

SCHEMAS: dict[str, Any] = {
    "Error": closed_object({"error": {"type": "string", "minLength": 1}}),
    "TrainRequest": {"type": "object", "additionalProperties": False, "properties": {
        "dataset_id": {**_ID, "description": "A dataset under datasets_dir (feature-service dataset list)."},
        "dataset_path": {**_STRING, "description": "Or the dataset's directory (it must hold _manifest.json)."},
        "horizon": {**_STRING, "description": "A horizon of the dataset: trains label_<horizon>."},
        "model": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["auto", "logistic", "hist_gradient_boosting"]},
            "params": {"type": "object"}}},
        "split": {"type": "object", "properties": {"validation": _NUM, "test": _NUM}},
    }},
    "TrainAccepted": closed_object({"model_id": _ID, "status": _STATUS}),
    "ModelStatus": closed_object({"model_id": _ID, "status": _STATUS, "error": _STRING,
                         "metadata": {"type": "object", "description": "metadata.json once trained."}},
                        optional=("error", "metadata")),
    "ModelList": closed_object({"models": {"type": "array", "items": {"type": "object", "required": ["model_id", "status"]}},
                       "active": {"oneOf": [_ID, {"type": "null"}]}}),
    "Activated": closed_object({"model_id": _ID, "registry_hash": _HASH, "previous": {"oneOf": [_ID, {"type": "null"}]}}),
    "Prediction": closed_object({"ts_ns": _INT, "symbol": _STRING, "model_id": _ID, "registry_hash": _HASH,
                        "book_valid": {"type": "integer", "enum": [0, 1]}, "probabilities": _PROBS,
                        "latency_ns": _INT}),
    "Health": {"type": "object", "required": ["status", "active_model", "vectors", "skew"], "properties": {
        "status": {"type": "string", "enum": ["ok", "idle", "no_model", "skew"]},
        "message": _STRING,
        "active_model": {"oneOf": [closed_object({"model_id": _ID, "registry_hash": _HASH, "horizon": _STRING}),
                                   {"type": "null"}]},
        "vectors": {"type": "object"},
        "skew": {"type": "object", "additionalProperties": _INT,
                 "description": "Vectors refused per foreign registry hash."},
    }},
}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema_ref(schema)}}}


_AUTH = {"security": [{"bearer": []}, {}], "description": "With a token configured, needs `Authorization: Bearer <token>`."}

PATHS: dict[str, Any] = {
    "/model/train": {"post": {
        "summary": "Train a model on a Feature Service dataset in a worker process; 202 with its id.", **_AUTH,
        "requestBody": _body("TrainRequest"),
        "responses": {"202": json_body("Accepted (or already trained: the same request, the same id).",
                                            "TrainAccepted"),
                      **error_responses(e400="Not a Feature Service dataset, an unknown horizon, a bad model kind or parameter.",
                                e401="Missing or wrong bearer token.", e415="The body is not JSON.")}}},
    "/model/activate": {"post": {
        "summary": "Score live vectors with this model (kept across restarts).", **_AUTH,
        "requestBody": {"required": True, "content": {JSON: {"schema": closed_object({"model_id": _ID})}}},
        "responses": {"200": json_body("Active.", "Activated"),
                      **error_responses(e400="Not a model id.", e401="Missing or wrong bearer token.",
                                e404="No such model.", e409="The model is not trained (queued, running, failed).")}}},
    "/model/list": {"get": {"summary": "Every model, its status, and the active one.",
                            "responses": {"200": json_body("The models.", "ModelList"), **error_responses()}}},
    "/model/predict/latest": {"get": {
        "summary": "The newest prediction of one symbol.",
        "parameters": [{"name": "symbol", "in": "query", "required": True,
                        "schema": {"type": "string", "pattern": SYMBOL_PATTERN}}],
        "responses": {"200": json_body("The prediction.", "Prediction"),
                      **error_responses(e400="No symbol or a malformed one.", e404="The symbol is not scored here.",
                                e503="No prediction yet (the message says why).")}}},
    "/model/{model_id}": {"get": {
        "summary": "A model's status, and its metadata once trained.",
        "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": _ID}],
        "responses": {"200": json_body("The model.", "ModelStatus"),
                      **error_responses(e400="Not a model id.", e404="No such model.")}}},
    "/health": {"get": {"summary": "Active model, vectors scored and refused, registry skew (always 200).",
                        "responses": {"200": json_body("Health.", "Health"), **error_responses()}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (text format 0.0.4).",
                         "responses": {"200": {"description": "The metrics.",
                                               "content": {"text/plain": {"schema": _STRING}}}, **error_responses()}}},
    "/openapi.json": {"get": {"summary": "This document.",
                              "responses": {"200": {"description": "OpenAPI 3.1.",
                                                    "content": {JSON: {"schema": {"type": "object"}}}}, **error_responses()}}},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every model-service route."""
    return {"openapi": "3.1.0",
            "info": {"title": "Feature Service reference model-service API", "version": "1",
                     "description": "Errors are JSON `{\"error\": reason}` bodies."},
            "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
            "paths": PATHS,
            "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}
