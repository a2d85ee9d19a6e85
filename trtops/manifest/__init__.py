"""Manifests: YAML files → validated schema objects → :class:`~trtops.spec.EngineSpec`.

``import trtops.manifest`` stays light: onnx is imported only when a model is checked.
"""

from trtops.manifest.collect import load_paths
from trtops.manifest.expand import DEFAULT_TOLERANCES, expand
from trtops.manifest.load import LoadedManifest

__all__ = ["DEFAULT_TOLERANCES", "LoadedManifest", "expand", "load_paths"]
