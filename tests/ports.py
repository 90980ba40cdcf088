"""Free loopback ports for the servers, proxies and stores the tests and benchmarks start.

A port is picked below the kernel's ephemeral range: one the kernel handed out (bind to 0) can be taken as the
source port of some outgoing connection between the pick and the server's bind (CI saw "Address already in use"
once, after tests that open thousands of connections). And a port is never handed out twice by one process: a
server started with three picked ports once got the same one for gRPC and HTTP, and failed to start (CI)."""
import pathlib
import random
import socket

_handed_out = set()


def _ephemeral_low():
    try:
        return int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A loopback port nothing listens on now, and that this process has not handed out before."""
    low = _ephemeral_low()
    if len(_handed_out) > (low - 10000) // 2:
        _handed_out.clear()  # thousands of servers in one process: the oldest have long stopped
    for _ in range(1000):
        port = random.randint(10000, low - 1)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port between 10000 and {low - 1}")
