"""One call of SAP's Python SDK for AI Core (sap-ai-sdk-core) on the generic
secrets API, as a user writes it; for tests/it/sdk.rs.

    target/sdk/py/bin/python tests/sdk/sdk_driver.py < commands.jsonl

Reads one command per line on standard input (which keeps tokens off the
command line), answers each with one line on standard output, until the end
of the input; each command builds its own client. A command (JSON object):

    url             AI_API_URL, e.g. http://127.0.0.1:8000 (the client gets
                    base_url=<url>/v2, as a service key's AI_API_URL + "/v2")
    token           the bearer token the server should see
    auth            "oauth" (default): AICoreV2Client(auth_url=..., client_id=...,
                    client_secret=...) against a client-credentials token
                    endpoint this script serves on 127.0.0.1 for the call, which
                    hands out `token` as the access_token; "token_creator":
                    AICoreV2Client(token_creator=lambda: "Bearer " + token)
    client_resource_group   AICoreV2Client(resource_group=...), the client's
                    default AI-Resource-Group (optional)
    op              create | list | get | modify | delete
    resource_group  the call's resource_group= argument (optional)
    tenant_scope    the call's ai_tenant_scope= argument (optional; the SDK's
                    default is True)
    name, data      for create, modify (data: key -> base64 value)
    keep_keys       for create, modify: send the body through the SDK's
                    rest_client with convert_body_to_camel_case=False (the
                    secrets client camel-cases the data keys)
    top, skip       for list

Answers {"ok": true, "result": ...} with what the SDK returned (its objects
as their attribute dicts), or {"ok": false, "status": <HTTP status>,
"exception": <class>, "body": <the server's body>}, or {"ok": false,
"error": ...} if the call failed otherwise. The SDK's secrets client has no
"get one"; `get` does what a user then does, the SDK's own rest_client.get
on /admin/secrets/<name>. "token_requests" counts the calls of the token
endpoint (one per token, for the whole run) during the command.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from ai_api_client_sdk.exception import AIAPIServerException
from ai_core_sdk.ai_core_v2_client import AICoreV2Client

CLIENT_ID = "gso-sdk-test"
CLIENT_SECRET = "gso-sdk-test-secret"


class TokenEndpoint(ThreadingHTTPServer):
    """A client-credentials token endpoint (XSUAA's /oauth/token shape)."""

    def __init__(self, token):
        super().__init__(("127.0.0.1", 0), TokenHandler)
        self.token = token
        self.requests = 0


class TokenHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        self.server.requests += 1
        want = {
            "grant_type": ["client_credentials"],
            "client_id": [CLIENT_ID],
            "client_secret": [CLIENT_SECRET],
        }
        if self.path != "/oauth/token" or form != want:
            self.reply(401, {"error": "invalid_client"})
            return
        self.reply(
            200,
            {"access_token": self.server.token, "token_type": "bearer", "expires_in": 43199},
        )

    def reply(self, code, body):
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


def plain(value):
    """The SDK's result objects as JSON: their attributes."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items()}
    return value


def call(client, cmd):
    op = cmd["op"]
    scope = {}
    if "resource_group" in cmd:
        scope["resource_group"] = cmd["resource_group"]
    if "tenant_scope" in cmd:
        scope["ai_tenant_scope"] = cmd["tenant_scope"]
    secrets = client.secrets
    if cmd.get("keep_keys") and op in ("create", "modify"):
        tenant = str(scope.get("ai_tenant_scope", True)).lower()
        body = {"data": cmd["data"]}
        path = "/admin/secrets"
        if op == "create":
            body["name"] = cmd["name"]
        else:
            path += f"/{cmd['name']}"
        send = client.rest_client.post if op == "create" else client.rest_client.patch
        return send(
            path=path,
            body=body,
            headers={"AI-Tenant-Scope": tenant},
            resource_group=scope.get("resource_group"),
            convert_body_to_camel_case=False,
        )
    if op == "create":
        return secrets.create(name=cmd["name"], data=cmd["data"], **scope)
    if op == "list":
        return secrets.query(top=cmd.get("top"), skip=cmd.get("skip"), **scope)
    if op == "modify":
        return secrets.modify(name=cmd["name"], data=cmd["data"], **scope)
    if op == "delete":
        return secrets.delete(name=cmd["name"], **scope)
    if op == "get":
        tenant = str(scope.get("ai_tenant_scope", True)).lower()
        return client.rest_client.get(
            path=f"/admin/secrets/{cmd['name']}",
            headers={"AI-Tenant-Scope": tenant},
            resource_group=scope.get("resource_group"),
        )
    raise ValueError(f"unknown op {op!r}")


def run(cmd, endpoints):
    """One command; `endpoints` keeps a token endpoint per token."""
    endpoint = None
    base = {"base_url": cmd["url"].rstrip("/") + "/v2"}
    if cmd.get("client_resource_group") is not None:
        base["resource_group"] = cmd["client_resource_group"]
    if cmd.get("auth", "oauth") == "oauth":
        token = cmd["token"]
        if token not in endpoints:
            endpoints[token] = TokenEndpoint(token)
            threading.Thread(target=endpoints[token].serve_forever, daemon=True).start()
        endpoint = endpoints[token]
        before = endpoint.requests
        client = AICoreV2Client(
            auth_url=f"http://127.0.0.1:{endpoint.server_address[1]}/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            **base,
        )
    else:
        token = cmd["token"]
        client = AICoreV2Client(token_creator=lambda: f"Bearer {token}", **base)
    try:
        out = {"ok": True, "result": plain(call(client, cmd))}
    except AIAPIServerException as e:
        try:
            body = json.loads(e.error_message)
        except (TypeError, ValueError):
            # The SDK keeps only error.message of an AI Core error body.
            body = {"error": {"code": e.error_code, "message": e.error_message}}
        out = {"ok": False, "status": e.status_code, "exception": type(e).__name__, "body": body}
    if endpoint is not None:
        out["token_requests"] = endpoint.requests - before
    return out


def main():
    endpoints = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = run(json.loads(line), endpoints)
        except Exception as e:  # pylint: disable=broad-except
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
