// A real OpenID Connect provider (the npm package oidc-provider) for pgbastion's
// integration tests: HTTPS on 127.0.0.1, one client-credentials client, JWT
// access tokens for the gateway's audience, and key rotation on demand.
// Test tooling only: never a production identity provider.
//
//   node provider.mjs serve --port 8443 --cert server.crt --key server.key \
//       --client-id ci-bot --client-secret s3cret --audience pgbastion \
//       [--alg ES256] [--ttl 300] [--groups read-only,ci] [--run-id 42]
//   -> prints one line "READY {"issuer":"https://127.0.0.1:8443","kids":["..."]}"
//
//   POST https://127.0.0.1:8443/__admin/rotate   {"keep_old": true}
//   -> {"kids":[new, old...]}: a fresh signing key first; with keep_old false
//      the old keys leave the JWKS (a revocation).
//
//   node provider.mjs token --issuer https://127.0.0.1:8443 --ca ca.crt \
//       --client-id ci-bot --client-secret s3cret
//   -> prints an access token (client credentials grant).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const RESOURCE = 'urn:pgbastion:gateway';

function newSigningKey(alg) {
  let pair;
  switch (alg) {
    case 'ES256': pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }); break;
    case 'ES384': pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }); break;
    case 'EdDSA': pair = crypto.generateKeyPairSync('ed25519'); break;
    case 'RS256': case 'PS256':
      pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }); break;
    default: throw new Error(`unsupported --alg ${alg}`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}` };
}

function makeProvider(options, keys) {
  const provider = new Provider(options.issuer, {
    clients: [{
      client_id: options['client-id'],
      client_secret: options['client-secret'],
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: options.alg,
    }],
    jwks: { keys },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    ttl: { ClientCredentials: Number(options.ttl) },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
          return {
            scope: 'db',
            audience: options.audience,
            accessTokenTTL: Number(options.ttl),
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: options.alg } },
          };
        },
      },
    },
    extraTokenClaims: () => {
      const extra = {};
      if (options.groups) extra.groups = options.groups.split(',').filter(Boolean);
      if (options['run-id']) extra.run_id = options['run-id'];
      return extra;
    },
  });
  provider.on('server_error', (ctx, error) => console.error(`provider error: ${error.stack}`));
  return provider;
}

function kidsOf(keys) { return keys.map((k) => k.kid); }

function serve(options) {
  options.issuer = `https://127.0.0.1:${options.port}`;
  let keys = [newSigningKey(options.alg)];
  let provider = makeProvider(options, keys);
  let handler = provider.callback();

  const server = https.createServer({
    cert: fs.readFileSync(options.cert),
    key: fs.readFileSync(options.key),
  }, (req, res) => {
    if (req.method === 'POST' && req.url === '/__admin/rotate') {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        const keepOld = body ? JSON.parse(body).keep_old !== false : true;
        keys = [newSigningKey(options.alg), ...(keepOld ? keys : [])];
        provider = makeProvider(options, keys);
        handler = provider.callback();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kids: kidsOf(keys) }));
      });
      return;
    }
    handler(req, res);
  });
  server.listen(Number(options.port), '127.0.0.1', () => {
    console.log(`READY ${JSON.stringify({ issuer: options.issuer, kids: kidsOf(keys) })}`);
  });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
}

async function token(options) {
  const basic = Buffer.from(`${encodeURIComponent(options['client-id'])}:${encodeURIComponent(options['client-secret'])}`).toString('base64');
  const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'db', resource: RESOURCE }).toString();
  const url = new URL(`${options.issuer}/token`);
  const response = await new Promise((resolve, reject) => {
    const request = https.request(url, {
      method: 'POST',
      ca: fs.readFileSync(options.ca),
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    }, (res) => {
      let data = '';
      res.on('data', (chunk) => { data += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, data }));
    });
    request.on('error', reject);
    request.end(body);
  });
  if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}: ${response.data}`);
  console.log(JSON.parse(response.data).access_token);
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
    ca: { type: 'string' }, issuer: { type: 'string' },
    'client-id': { type: 'string', default: 'ci-bot' },
    'client-secret': { type: 'string' },
    audience: { type: 'string', default: 'pgbastion' },
    alg: { type: 'string', default: 'ES256' },
    ttl: { type: 'string', default: '300' },
    groups: { type: 'string' }, 'run-id': { type: 'string' },
  },
});
if (positionals[0] === 'serve') {
  serve(values);
} else if (positionals[0] === 'token') {
  token(values).catch((error) => { console.error(error.message); process.exit(1); });
} else {
  console.error('usage: node provider.mjs serve|token [options] (see the comment at the top)');
  process.exit(2);
}
