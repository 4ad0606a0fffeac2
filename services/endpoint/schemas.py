"""OpenAPI schemas of the request and response bodies (documentation and property-based tests only).

Handlers parse bodies themselves (see instances.py), so these describe what is accepted
without costing anything per request.
"""

from __future__ import annotations

from typing import Any

_NUMBER = {"type": "number"}
RECORD = {
    "type": "object",
    "description": "one purchase: the workshop's instance shape; more numeric columns are passed to the model",
    "required": ["tax", "shipping", "value"],
    "properties": {"tax": _NUMBER, "shipping": _NUMBER, "value": _NUMBER},
    "example": {"tax": 4.2, "shipping": 5.99, "value": 52.1},
}
ROW = {
    "type": "array",
    "description": "one purchase as [tax, shipping, value]",
    "items": _NUMBER,
    "minItems": 3,
    "maxItems": 3,
}
INSTANCES = {"type": "array", "minItems": 1, "items": {"oneOf": [RECORD, ROW]}}

VERTEX_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["instances"],
    "properties": {"instances": INSTANCES, "parameters": {"type": "object"}},
    "example": {"instances": [{"tax": 4.2, "shipping": 5.99, "value": 52.1}]},
}

ANY_REQUEST: dict[str, Any] = {
    "description": "any of MLflow's /invocations JSON shapes",
    "oneOf": [
        VERTEX_REQUEST,
        {"type": "object", "required": ["dataframe_records"], "properties": {"dataframe_records": INSTANCES}},
        {
            "type": "object",
            "required": ["dataframe_split"],
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["columns", "data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array"}},
                    },
                }
            },
        },
        {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "inputs": {
                    "oneOf": [
                        INSTANCES,
                        {
                            "type": "object",
                            "required": ["tax", "shipping", "value"],
                            "additionalProperties": {"type": "array", "items": _NUMBER},
                        },
                    ]
                }
            },
        },
    ],
}

PREDICTION = {
    "type": "object",
    "properties": {
        "score": {"type": ["number", "null"], "description": "higher = more anomalous"},
        "is_anomaly": {"type": "boolean"},
        "nearest_centroid_id": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "k-means only: BigQuery ML's cluster id, as a one-element list",
        },
        "normalized_distance": {"type": ["number", "null"]},
    },
}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "status": {"type": "string"}},
        }
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _json(
        {
            "type": "object",
            "properties": {
                "predictions": {"type": "array", "items": PREDICTION},
                "deployedModelId": {"type": "string"},
                "model": {"type": "string"},
                "modelDisplayName": {"type": "string"},
                "modelVersionId": {"type": "string"},
            },
        },
        "one prediction per instance, and the model version that answered",
    ),
    400: _json(_ERROR, "bad input; the message names the field"),
    404: _json(_ERROR, "unknown project, location or endpoint"),
    413: _json(_ERROR, "body too large"),
    503: _json(_ERROR, "no model loaded yet"),
}
RAW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _json({"type": "object", "properties": {"predictions": {"type": "array"}}}, "one prediction per row"),
    400: _json({"type": "object"}, "bad input; the message names the field"),
    404: _json(_ERROR, "unknown project, location or endpoint"),
    413: _json({"type": "object"}, "body too large"),
    503: _json({"type": "object"}, "no model loaded yet"),
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
