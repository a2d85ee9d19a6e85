"""A local Ray cluster for the executor tests: a head without GPUs and two "GPU" nodes
that stand in for two GPU models.

Each GPU node declares one GPU to Ray (none is real) and one unit of the custom resource
trtops routes by (``trtops_gpu:<signature>``); its environment makes the toolchain test
double (tests/doubles.py) pretend to be that GPU, so probes report it and every build
records which node ran it. Everything else is real Ray: scheduling, object store, worker
processes. Skipped when ray (the optional extra ``trtops[ray]``) is not installed.
"""

from __future__ import annotations

import os

import pytest
from ray_helpers import H200, L4, TESTS


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """(cluster address, device log path): the log gets one line per build (see
    ``TRTOPS_FAKE_DEVICE_LOG`` in tests/doubles.py)."""
    pytest.importorskip("ray")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    from ray.cluster_utils import Cluster

    device_log = tmp_path_factory.mktemp("ray") / "devices.log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        # Ray's usage stats and dashboard would only slow a test cluster down.
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            common = {
                "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                "TRTOPS_TEST_TOOLCHAIN": "doubles:FakeToolchain",
                "TRTOPS_FAKE_DEVICE_LOG": str(device_log),
                "TRTOPS_FAKE_CRASH": "crashy",
                "TRTOPS_FAKE_SLOW": "slow",
                "RAY_AUTH_MODE": "disabled",
            }
            cluster.add_node(num_cpus=1, num_gpus=1, resources={f"trtops_gpu:{H200}": 1},
                             env_vars={**common, "TRTOPS_FAKE_GPU": "NVIDIA H200", "TRTOPS_FAKE_CC": "9.0"})
            cluster.add_node(num_cpus=1, num_gpus=1, resources={f"trtops_gpu:{L4}": 1},
                             env_vars={**common, "TRTOPS_FAKE_GPU": "NVIDIA L4", "TRTOPS_FAKE_CC": "8.9"})
            yield cluster.address, device_log
        finally:
            cluster.shutdown()
