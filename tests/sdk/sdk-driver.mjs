// One call of SAP's JS SDK for AI Core (@sap-ai-sdk/ai-api, SecretApi) on
// the generic secrets API, as a user writes it; for tests/it/sdk.rs.
//
//   target/sdk/bin/node target/sdk/js/sdk-driver.mjs < commands.jsonl
//
// (run from target/sdk/js, where npm installed the SDK: the tests copy this
// file there.) Reads one command per line on standard input (which keeps
// tokens off the command line), answers each with one line on standard
// output, until the end of the input. A command (JSON object):
//
//   url             AI_API_URL, e.g. http://127.0.0.1:8000 (the SDK appends /v2)
//   token           the bearer token, given as the destination's auth token
//                   (the custom-destination shape SAP's samples use)
//   op              create | list | get | modify | delete
//   resource_group  the AI-Resource-Group header parameter (optional; the
//                   SDK sends "default" without it)
//   tenant_scope    the AI-Tenant-Scope header parameter (optional)
//   name, data, labels   for create, modify
//   top, skip, count     for list ($top, $skip, $count)
//
// Answers {"ok": true, "result": <what execute() returned>}, or {"ok":
// false, "status": <HTTP status>, "body": <the server's body>}, or {"ok":
// false, "error": ...} if the call failed otherwise.

import { createInterface } from 'node:readline';
import { SecretApi } from '@sap-ai-sdk/ai-api';

function request(cmd, headers) {
  const body = {};
  if (cmd.name !== undefined && cmd.op === 'create') body.name = cmd.name;
  if (cmd.data !== undefined) body.data = cmd.data;
  if (cmd.labels !== undefined) body.labels = cmd.labels;
  switch (cmd.op) {
    case 'create':
      return SecretApi.kubesubmitV4GenericSecretsCreate(body, headers);
    case 'list': {
      const query = {};
      if (cmd.top !== undefined) query.$top = cmd.top;
      if (cmd.skip !== undefined) query.$skip = cmd.skip;
      if (cmd.count !== undefined) query.$count = cmd.count;
      return SecretApi.kubesubmitV4GenericSecretsGetAll(query, headers);
    }
    case 'get':
      return SecretApi.kubesubmitV4GenericSecretsGet(cmd.name, headers);
    case 'modify':
      return SecretApi.kubesubmitV4GenericSecretsUpdate(cmd.name, body, headers);
    case 'delete':
      return SecretApi.kubesubmitV4GenericSecretsDelete(cmd.name, headers);
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

async function run(cmd) {
  const destination = {
    url: cmd.url,
    authentication: 'OAuth2ClientCredentials',
    authTokens: [
      {
        type: 'bearer',
        value: cmd.token,
        http_header: { key: 'Authorization', value: `Bearer ${cmd.token}` },
        error: null
      }
    ]
  };
  const headers = {};
  if (cmd.resource_group !== undefined) headers['AI-Resource-Group'] = cmd.resource_group;
  if (cmd.tenant_scope !== undefined) headers['AI-Tenant-Scope'] = String(cmd.tenant_scope);
  try {
    return { ok: true, result: await request(cmd, headers).execute(destination) };
  } catch (error) {
    // The SDK wraps the HTTP client's error: "Request failed with status
    // code <n>.", the response under cause.
    const response = error.cause?.response;
    if (!response) return { ok: false, error: String(error?.stack ?? error) };
    return { ok: false, status: response.status, body: response.data };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let out;
  try {
    out = await run(JSON.parse(line));
  } catch (error) {
    out = { ok: false, error: String(error?.stack ?? error) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
