"""Seed corpora of the request and config fuzz targets (tests/fuzz/corpus/{json_limits,v2_rest,v2_grpc,v1_rest,
model_config}): valid inputs of every form each parser reads, for the signature of tests/fuzz/fuzz_support.h
(x FP32 [-1, 4], ids INT64 [-1, 2], text BYTES [-1]), so that mutations start from deep inside the decoders.
Usage: .venv/bin/python tests/fuzz/make_request_corpus.py"""
import json
import pathlib
import struct

import numpy as np
import tritonclient.grpc.service_pb2 as pb

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def v2_json_bodies():
    x = {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [5, 6, 7.5, -8]]}
    ids = {"name": "ids", "shape": [2, 2], "datatype": "INT64", "data": [1, -2, 9007199254740993, 4]}
    text = {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hello", "w\u00f6rld \\\" \\n"]}
    return {
        "all": {"id": "r1", "inputs": [x, ids, text], "outputs": [{"name": "y"}, {"name": "label"}]},
        "params": {"inputs": [x, ids, text], "parameters": {"priority": 1, "timeout": 1000,
                                                             "binary_data_output": True},
                   "outputs": [{"name": "y", "parameters": {"binary_data": False}}]},
        "flat": {"inputs": [dict(x, data=[1, 2, 3, 4, 5, 6, 7, 8]), dict(ids, data=[1, 2, 3, 4]), text]},
        "one": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0.5, 1e-3, -0.0, 3e38]}]},
    }


def v2_binary(with_spare):
    """The binary tensor extension: a JSON header, then x (FP32) and text (BYTES, 4-byte lengths) raw."""
    x = np.arange(8, dtype=np.float32).tobytes()
    text = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b"cde"))
    header = json.dumps({"inputs": [
        {"name": "x", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data_size": len(x)}},
        {"name": "ids", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]},
        {"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(text)}}],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}).encode()
    form = 1 | (2 if with_spare else 0)
    return bytes([form]) + struct.pack("<H", len(header)) + header + x + text


def grpc_requests():
    typed = pb.ModelInferRequest(model_name="m", id="r1")
    t = typed.inputs.add(name="x", datatype="FP32", shape=[2, 4])
    t.contents.fp32_contents.extend([1, 2, 3, 4, 5, 6, 7, 8])
    t = typed.inputs.add(name="ids", datatype="INT64", shape=[2, 2])
    t.contents.int64_contents.extend([1, -2, 3, 4])
    t = typed.inputs.add(name="text", datatype="BYTES", shape=[2])
    t.contents.bytes_contents.extend([b"hello", b""])
    typed.outputs.add(name="y")
    typed.parameters["priority"].uint64_param = 1
    raw = pb.ModelInferRequest(model_name="m", model_version="1")
    raw.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    raw.inputs.add(name="ids", datatype="INT64", shape=[1, 2])
    raw.inputs.add(name="text", datatype="BYTES", shape=[1])
    raw.raw_input_contents.extend([np.ones(4, np.float32).tobytes(), np.arange(2, dtype=np.int64).tobytes(),
                                   struct.pack("<I", 3) + b"abc"])
    return {"typed": typed.SerializeToString(), "raw": raw.SerializeToString()}


CONFIGS = {
    "trees": 'backend: "trees"\nmax_batch_size: 8192\n',
    "full": '''name: "m"
max_batch_size: 64
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] label_filename: "labels.txt" } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
version_policy { specific { versions: [ 1, 3 ] } }
dynamic_batching { max_queue_delay_microseconds: 100 preferred_batch_size: [ 8, 16 ] priority_levels: 2
  default_priority_level: 1 default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 1000
  max_queue_size: 10 } }
parameters { key: "feature_names" value: { string_value: "a,b,c,d" } }
parameters { key: "scores_output" value: { string_value: "y" } }
''',
    "latest": 'max_batch_size: 0\nversion_policy { latest { num_versions: 2 } }\ndefault_model_filename: "m.txt"\n',
    "all_versions": 'version_policy { all { } }\ninput [ { name: "x" data_type: TYPE_STRING dims: [ -1 ] reshape: { shape: [ ] } } ]\n',
}


def main():
    for name, body in v2_json_bodies().items():
        text = json.dumps(body)
        write("json_limits", f"v2-{name}", text)
        write("v2_rest", f"json-{name}", b"\0\0\0" + text.encode())
        write("v2_rest", f"inplace-{name}", b"\2\0\0" + text.encode())
    write("v2_rest", "binary", v2_binary(False))
    write("v2_rest", "binary-inplace", v2_binary(True))
    write("json_limits", "strings", '{"a": "[[[[\\"{{{{", "b": [[[[1]]]], "c": "\\\\"}')
    write("json_limits", "deep", "[" * 8 + "]" * 8)
    for name, data in grpc_requests().items():
        write("v2_grpc", name, data)
    v1 = {"values": {"rows": [{"values": [1, 2, 3, 4]}, {"values": [5, 6, 7, 8]}]},
          "features": {"model": "m", "rows": [{"features": {"a": 1, "b": 2, "c": 3, "d": 4}}]},
          "mixed": {"rows": [{"values": [1.5]}, {"features": {"z": 1}}]}}
    for name, body in v1.items():
        write("v1_rest", name, json.dumps(body))
        write("json_limits", f"v1-{name}", json.dumps(body))
    for name, text in CONFIGS.items():
        write("model_config", name, text)


if __name__ == "__main__":
    main()
