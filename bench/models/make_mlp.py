"""The compute-bound benchmark model: an MLP with input 512, three hidden layers of 1024 (ReLU) and 10 softmax
outputs, random weights from a fixed seed (a benchmark model: what it predicts does not matter, its cost does).
Usage: make_mlp.py OUT.onnx [--hidden-layers N]   (N: 3 by default; bench/overload.py makes a deeper one)"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(path, hidden_layers=3):
    rng = np.random.default_rng(0)
    sizes = [512] + [1024] * hidden_layers + [10]
    nodes, inits, prev = [], [], "X"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = np.zeros(n_out, np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [f"h{i}"]))
        prev = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Softmax", [prev], ["probabilities"], axis=1))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 512])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden-layers", type=int, default=3)
    a = ap.parse_args()
    main(a.out, a.hidden_layers)
