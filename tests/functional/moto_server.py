"""A moto server on a free loopback port, for the AWS tests and the inventory benchmark.

``host`` puts it on another address of this machine: the simulated cloud puts it on the rig's
gateway, where the containers that play instances reach it too (its IMDS at /latest/ included).

Its request log goes to a file, never to an undrained pipe: werkzeug logs one line per request,
and once a pipe's 64 KiB buffer is full the server blocks on its next log line and stops
answering (what a whole test run's worth of requests did in CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# Fake credentials, and never a reach for real ones or for the instance metadata service.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


_STOCK_IMAGE = []


def stock_image(ec2):
    """The first of moto's stock EBS images by id: a bootable image for the tests.

    moto's stock images are the same after every reset and in every server of a run, and listing
    them is slow (about 1,300 images rendered and parsed, some 2.5 s of CPU): listed once per run.
    """
    if not _STOCK_IMAGE:
        found = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "root-device-type", "Values": ["ebs"]}])
        _STOCK_IMAGE.append(sorted(i["ImageId"] for i in found["Images"])[0])
    return _STOCK_IMAGE[0]


class MotoServer:
    def __init__(self, start_timeout=30, host="127.0.0.1", command=None, record=False):
        """``command``: the server's program and leading arguments, moto_server's own if None.
        ``record``: keep moto's recording of every request (``recording``, see permissions.py)."""
        if command is None:
            exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
            if not exe:
                raise FileNotFoundError(
                    "moto_server is not installed: run rig/setup (requirements-dev.txt: moto[server])"
                )
            command = [exe]
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        self.host, self.port = host, port
        self.url = "http://%s:%d" % (host, port)
        fd, self.log = tempfile.mkstemp(prefix="oce-moto-", suffix=".log")
        # moto's recorder: every request the server answers, for the permissions the calls need.
        self.recording, env = None, None
        if record:
            rfd, self.recording = tempfile.mkstemp(prefix="oce-moto-", suffix=".jsonl")
            os.close(rfd)
            env = dict(os.environ, MOTO_ENABLE_RECORDING="1", MOTO_RECORDER_FILEPATH=self.recording)
        try:
            self.proc = subprocess.Popen(
                [*command, "-H", host, "-p", str(port)], stdout=fd, stderr=subprocess.STDOUT, env=env
            )
        finally:
            os.close(fd)  # the server holds its own copy
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                self.reset()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start:\n" + self.log_tail()) from None
                time.sleep(0.2)

    def reset(self, timeout=10):
        """Forget every resource; an OSError says the server does not answer."""
        request = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=timeout):
            pass

    def log_tail(self, size=3000):
        with open(self.log, "rb") as f:
            f.seek(max(0, os.path.getsize(self.log) - size))
            return f.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.unlink(self.log)
        if self.recording:
            os.unlink(self.recording)
