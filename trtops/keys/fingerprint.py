"""Compatibility facade: the engine key's parts live in modules by concern.

* :mod:`trtops.keys.canonical` — canonical JSON and its sha256
* :mod:`trtops.keys.memo` — streamed file sha256, the digest memo, parallel hashing
* :mod:`trtops.keys.model_digest` — model digests (ONNX file + external data), data digests
* :mod:`trtops.keys.engine_key` — key components (build, TensorRT, GPU) and the key
* :mod:`trtops.onnx_facts` — external-data locations (the protobuf wire walk)

Many modules (cache, plan, executors, ops) still import from here while they are being
reorganised in parallel; new code imports from the modules above.
"""

from trtops.keys.canonical import canonical_json, sha256_json
from trtops.keys.engine_key import (
    BUILD_KEY_DEFAULTS,
    KEY_SCHEMA,
    EngineKey,
    build_component,
    engine_key,
    gpu_signature,
    key_components,
    key_of,
    tensorrt_component,
)
from trtops.keys.memo import (
    RACY_NS,
    DigestMemo,
    default_workers,
    hash_files,
    sha256_file,
)
from trtops.keys.model_digest import (
    ModelDigest,
    data_digest,
    declared_model_digest,
    digest_models,
)
from trtops.onnx_facts import external_data_locations

__all__ = [
    "BUILD_KEY_DEFAULTS",
    "KEY_SCHEMA",
    "RACY_NS",
    "DigestMemo",
    "EngineKey",
    "ModelDigest",
    "build_component",
    "canonical_json",
    "data_digest",
    "declared_model_digest",
    "default_workers",
    "digest_models",
    "engine_key",
    "external_data_locations",
    "gpu_signature",
    "hash_files",
    "key_components",
    "key_of",
    "sha256_file",
    "sha256_json",
    "tensorrt_component",
]
