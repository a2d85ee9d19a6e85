"""The JSON Schema of manifests (``trtops schema``), for editors using yaml-language-server."""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "urn:trtops:manifest:v1"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of manifest version 1, with a description on every field."""
    from trtops.manifest.models import Manifest

    schema = Manifest.model_json_schema()
    head = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "trtops manifest",
        "description": "Declares TensorRT engines to build: targets (GPU and TensorRT "
        "version) and ONNX models with precisions, profiles and accuracy gates. "
        "Check with `trtops validate`.",
    }
    schema.pop("title", None)
    schema.pop("description", None)
    return {**head, **schema}
