"""Runs the kserve Python SDK's v2 REST and gRPC clients against a server; prints the outputs as JSON.

usage: kserve_client.py HTTP_URL GRPC_TARGET INPUT.npy
"""
import asyncio
import json
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(http_url, grpc_target, path):
    x = np.load(path)
    rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=10))
    inp = InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    res = await rest.infer(http_url, InferRequest(model_name="breast_cancer", infer_inputs=[inp], request_id="k"),
                           model_name="breast_cancer")
    rest_out = {o.name: np.asarray(o.as_numpy()).tolist() for o in res.outputs}
    ready = await rest.is_model_ready(http_url, "breast_cancer")
    await rest.close()
    g = InferenceGRPCClient(grpc_target)
    inp = InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = await g.infer(InferRequest(model_name="breast_cancer", infer_inputs=[inp], request_id="k"))
    grpc_out = {o.name: np.asarray(o.as_numpy()).tolist() for o in res.outputs}
    ready = ready and await g.is_model_ready("breast_cancer")
    await g.close()
    print(json.dumps({"rest": rest_out, "grpc": grpc_out, "ready": bool(ready)}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
