"""Idle connections: what 10,000 idle HTTP connections and 1,000 idle gRPC connections cost the server, and whether
it still answers at once beside them (docs/reliability.md#capacity). Loopback only, bounded, stops by itself.

  .venv/bin/python bench/capacity.py --out docs/benchmarks/capacity.json

The server runs with --http-max-connections above the count (its default, 4096, would close the rest at
accept). HTTP connections are opened and left without a request (well within --http-request-timeout-s); gRPC
channels each get a connection of their own (a local subchannel pool) and make one call, then idle. Before,
with them open, and after they are closed: the server's RSS and descriptors, and the latency of a request on a
fresh connection (median of 20). Exits 1 when the server dies or keeps descriptors after the clients left
(CI runs it with 2,000 and 200).
"""
import argparse
import json
import os
import pathlib
import resource
import socket
import statistics
import sys
import tempfile
import time

import requests

from serving import BINARY, ROOT, Server, process_state


def server_state(pid):
    state = process_state(pid)
    return {"rss_mib": state["rss_mib"], "fds": state["fds"]}


def fresh_latency_ms(http):
    times = []
    for _ in range(20):
        start = time.perf_counter()
        r = requests.get(http + "/v2/health/ready", timeout=10, headers={"Connection": "close"})
        times.append(1000 * (time.perf_counter() - start))
        assert r.status_code == 200
    return round(statistics.median(times), 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--http", type=int, default=10000)
    ap.add_argument("--grpc", type=int, default=1000)
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--out")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.http + args.grpc + 200:
        sys.exit(f"capacity: the open file limit ({hard}) is below the connections asked for")

    import grpc
    from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc

    log = tempfile.TemporaryFile()
    try:
        server = Server(ROOT / "models" / "repository", "--http-max-connections", args.http + 100, log=log,
                        binary=args.binary)
    except RuntimeError as e:
        sys.exit(f"capacity: {e}")
    http, http_port, grpc_port = server.http, server.http_port, server.grpc_port
    result = {"machine": f"{os.cpu_count()} CPUs, {sys.platform}", "http_connections": args.http,
              "grpc_connections": args.grpc}
    try:
        time.sleep(1)
        result["idle"] = dict(server_state(server.pid), fresh_request_ms=fresh_latency_ms(http))

        start = time.time()
        socks = []
        for _ in range(args.http):
            s = socket.create_connection(("127.0.0.1", http_port))
            socks.append(s)
        time.sleep(2)  # every connection accepted and registered
        state = server_state(server.pid)
        result["with_http"] = dict(state, fresh_request_ms=fresh_latency_ms(http),
                                   open_seconds=round(time.time() - start, 1))
        result["kib_per_http_connection"] = round(1024 * (state["rss_mib"] - result["idle"]["rss_mib"]) / args.http, 1)
        for s in socks:
            s.close()
        socks.clear()
        time.sleep(2)
        result["after_http"] = server_state(server.pid)

        channels = []
        for _ in range(args.grpc):
            ch = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[("grpc.use_local_subchannel_pool", 1)])
            pb_grpc.GRPCInferenceServiceStub(ch).ServerLive(pb.ServerLiveRequest(), timeout=10)
            channels.append(ch)
        time.sleep(2)
        state = server_state(server.pid)
        result["with_grpc"] = dict(state, fresh_request_ms=fresh_latency_ms(http))
        result["kib_per_grpc_connection"] = round(
            1024 * (state["rss_mib"] - result["after_http"]["rss_mib"]) / args.grpc, 1)
        for ch in channels:
            ch.close()
        time.sleep(2)
        result["after_grpc"] = server_state(server.pid)
        result["server_alive"] = server.proc.poll() is None
    finally:
        result["server_exit_code"] = server.stop()
    print(json.dumps(result, indent=1))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if not result.get("server_alive") or result["server_exit_code"] != 0:
        sys.exit("capacity: the server did not survive")
    # Every connection's descriptor is given back once its client has gone (a few of the server's own may
    # come and go: the access log, a model file).
    for after in ("after_http", "after_grpc"):
        if result[after]["fds"] > result["idle"]["fds"] + 4:
            sys.exit(f"capacity: {result[after]['fds']} descriptors open {after.replace('_', ' ')} "
                     f"(idle: {result['idle']['fds']})")
    print("capacity: passed")


if __name__ == "__main__":
    main()
