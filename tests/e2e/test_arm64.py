"""The arm64 server (under qemu) and the x86_64 server answer the same inputs with the same predictions:
every bundled model, every row of its scikit-learn dataset, over v2 gRPC. Runs in `make test-arm64` (the
suite against the arm64 server, SERVING_EMULATED set); X86_SERVER names the native build. The largest
difference seen is printed (-s)."""
import os
import pathlib

import numpy as np
import pytest
import tritonclient.grpc as tgrpc

from conftest import MODELS, Server

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARM64 = ROOT / "tests" / "arm64" / "inference-server"
X86 = pathlib.Path(os.environ.get("X86_SERVER", ROOT / "build" / "inference-server"))

pytestmark = [pytest.mark.allow_skip("compares with the arm64 build: only in make test-arm64"),
              pytest.mark.skipif(not os.environ.get("SERVING_EMULATED"), reason="only in make test-arm64")]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    runs = [Server(MODELS, tmp_path=tmp_path_factory.mktemp(name), binary=binary).wait_ready(timeout=120)
            for name, binary in (("x86", X86), ("arm64", ARM64))]
    yield runs
    for s in runs:
        assert s.stop() == 0, s.log_text()[-3000:]


@pytest.mark.parametrize("model", ["breast_cancer", "digits", "diabetes"])
def test_arm64_predictions_equal_x86(servers, datasets, model):
    x = datasets[model].data.astype(np.float32)
    outputs = []
    for s in servers:
        client = tgrpc.InferenceServerClient(s.grpc_target)
        parts = []
        for rows in np.array_split(x, -(-len(x) // 1024)):  # the models' max_batch_size is 1024
            inp = tgrpc.InferInput("X", list(rows.shape), "FP32")
            inp.set_data_from_numpy(rows)
            result = client.infer(model, [inp], client_timeout=120)
            parts.append({o.name: result.as_numpy(o.name) for o in result.get_response().outputs})
        outputs.append({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})
    x86, arm64 = outputs
    assert x86.keys() == arm64.keys()
    for name in x86:
        diff = float(np.max(np.abs(x86[name].astype(np.float64) - arm64[name].astype(np.float64))))
        print(f"{model}.{name}: {x86[name].size} values, largest difference {diff:g}")
        np.testing.assert_allclose(arm64[name], x86[name], rtol=0, atol=1e-5)
