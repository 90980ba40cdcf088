"""A real S3-compatible server for the tests and the benchmark: moto's server mode (PyPI moto[server]) with IAM
authentication on, so every request must carry a valid AWS Signature V4 made with an access key the store
issued; and a TCP forwarder that can cut the store off and bring it back."""
import json
import os
import pathlib
import socket
import subprocess
import threading
import time

from conftest import free_port, wait_for

MOTO = pathlib.Path(os.environ.get("VIRTUAL_ENV", pathlib.Path(__file__).resolve().parents[2] / ".venv")) / "bin" / "moto_server"


def listening(port):
    """Whether something accepts connections on loopback `port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Store:
    """moto_server on loopback with IAM authentication on, one user allowed everything, bucket `models`."""

    # create_user, create_access_key, create_policy, attach_user_policy: moto authenticates every action after these.
    SETUP_ACTIONS = 4

    def __init__(self, tmp_path):
        import boto3

        self.port = free_port()
        self.log = open(tmp_path / "moto.log", "wb")
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(self.SETUP_ACTIONS))
        self.proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: listening(self.port), timeout=30, what="moto_server listening")
        setup = dict(endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="setup",
                     aws_secret_access_key="setup")
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="serving")
        key = iam.create_access_key(UserName="serving")["AccessKey"]
        policy = iam.create_policy(PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        iam.attach_user_policy(UserName="serving", PolicyArn=policy["Policy"]["Arn"])
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                               aws_access_key_id=self.key, aws_secret_access_key=self.secret)
        self.s3.create_bucket(Bucket="models")

    def env(self, secret=None):
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": secret or self.secret,
                "AWS_REGION": "us-east-1"}

    def url(self, prefix="repo", bucket="models"):
        return f"s3://http://127.0.0.1:{self.port}/{bucket}/{prefix}"

    def upload(self, local, prefix):
        for path in sorted(pathlib.Path(local).rglob("*")):
            if path.is_file():
                self.s3.upload_file(str(path), "models", f"{prefix}/{path.relative_to(local).as_posix()}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


class Forwarder:
    """A TCP forwarder to the store that can be switched off (every connection closed, new ones refused) and on
    again on the same port: the store becoming unreachable and coming back, its contents kept."""

    def __init__(self, target_port, rate=None):
        """`rate`: bytes per second from the store to the client (None: as fast as it goes), so that a download
        takes long enough to be cut off in the middle."""
        self.target, self.port, self.rate = target_port, free_port(), rate
        self.listener, self.conns, self.lock = None, [], threading.Lock()
        self.start()

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Connections cut mid-transfer hold the port until their close completes (FIN_WAIT): retry a while.
        deadline = time.time() + 30
        while True:
            try:
                self.listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [client, upstream]
            for a, b, rate in ((client, upstream, None), (upstream, client, self.rate)):
                threading.Thread(target=self._pump, args=(a, b, rate), daemon=True).start()

    @staticmethod
    def _pump(src, dst, rate):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []


TLS_FRONT = """
daemon off;
worker_processes 1;
{user}
error_log {tmp}/error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{store_port};
            # The Host the client signed (AWS Signature V4 covers it) reaches the store unchanged.
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
        }}
    }}
}}
"""


class TlsFront:
    """nginx terminating HTTPS in front of the store with a certificate of the test's own CA: an S3 endpoint
    over TLS, as a private store is reached (s3://https://host:port/bucket/prefix)."""

    def __init__(self, tmp, store_port, certificate):
        from proxies import NGINX

        tmp = pathlib.Path(tmp)
        tmp.mkdir(parents=True)
        self.port = free_port()
        cert, key = certificate
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(TLS_FRONT.format(user=user, tmp=tmp, port=self.port, cert=cert, key=key,
                                         store_port=store_port))
        check = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(tmp)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(self.port), timeout=30, what="nginx listening")

    def url(self, prefix="repo", bucket="models"):
        return f"s3://https://127.0.0.1:{self.port}/{bucket}/{prefix}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
