"""HTTP/2 conformance of the gRPC port with h2spec (github.com/summerwind/h2spec v2.2.1, built by
scripts/install-deps.sh): its 145 cases of RFC 7540 and HPACK, each a malformed or unusual frame sequence, against
the real server. The port is gRPC's own HTTP/2 (grpc++ from Debian 12), so which cases fail is gRPC's behaviour, a
finding recorded in docs/reliability.md#http2-conformance; what this test requires of our server is that it
survives every case and goes on serving."""
import collections
import pathlib
import subprocess
import xml.etree.ElementTree as ET

import grpc
import pytest
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

from conftest import ROOT

H2SPEC = ROOT / ".deps" / "bin" / "h2spec"


@pytest.mark.not_under_emulation("h2spec's cases wait on timeouts that an emulated server runs past")
def test_the_grpc_port_survives_every_h2spec_case_and_keeps_serving(make_server, tmp_path):
    assert H2SPEC.exists(), "scripts/install-deps.sh test builds h2spec into .deps/bin"
    server = make_server(ROOT / "models" / "repository")
    host, port = server.grpc_target.split(":")
    report = tmp_path / "h2spec.xml"
    out = subprocess.run([str(H2SPEC), "-h", host, "-p", port, "-o", "1", "-j", str(report)], capture_output=True,
                         text=True, timeout=300)
    summary = out.stdout.strip().splitlines()[-1]
    assert "145 tests" in summary, out.stdout[-2000:]
    failed = collections.Counter()
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed[suite.get("package") or case.get("package")] += 1
    print(f"h2spec: {summary}; failing sections: {dict(sorted(failed.items()))}")
    assert server.proc.poll() is None, "the server died under h2spec:\n" + server.log_text()[-3000:]
    with grpc.insecure_channel(server.grpc_target) as ch:
        assert pb_grpc.GRPCInferenceServiceStub(ch).ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        meta = pb_grpc.GRPCInferenceServiceStub(ch).ModelMetadata(pb.ModelMetadataRequest(name="diabetes"), timeout=10)
        assert meta.name == "diabetes"
