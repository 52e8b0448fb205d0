"""A proxy in front of moto that answers chosen AWS actions with an error, as AWS would.

moto cannot play a cloud-side fault in the middle of a playbook (a zone out of capacity when the
instance is launched, after the network exists): the playbook's AWS_ENDPOINT_URL points here,
every other request goes on to moto unchanged. Loopback only.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
    "<Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
)

# Headers that describe one hop, not the message.
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    def __init__(self, target, faults):
        """``faults``: action (RunInstances, PutMetricAlarm) -> (HTTP status, error code, message).

        Query-protocol actions (EC2, IAM, SNS) are named in the body, JSON-protocol ones
        (CloudWatch, CloudWatch Logs) in the X-Amz-Target header (Service.Action).
        """
        self.target = target.rstrip("/")
        self.faults = dict(faults)
        self.hits = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target") or ""
                if target:
                    action = target.rsplit(".", 1)[-1]
                else:
                    action = urllib.parse.parse_qs(body.decode("latin-1")).get("Action", [""])[0]
                if action in proxy.faults:
                    proxy.hits.append(action)
                    status, code, message = proxy.faults[action]
                    if target:
                        error = json.dumps({"__type": code, "message": message}).encode()
                        self.answer(status, {"Content-Type": "application/x-amz-json-1.0"}, error)
                    else:
                        xml = ERROR_XML.format(code=code, message=message).encode()
                        self.answer(status, {"Content-Type": "text/xml"}, xml)
                    return
                self.forward(body)

            def forward(self, body):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                request = urllib.request.Request(
                    proxy.target + self.path, data=body or None, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        self.answer(response.status, dict(response.headers), response.read())
                except urllib.error.HTTPError as exc:
                    self.answer(exc.code, dict(exc.headers), exc.read())

            def answer(self, status, headers, payload):
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
