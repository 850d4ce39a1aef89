// The benchmark's peer: node oidc-provider, configured only for what the suite measures
// (benchmarks/peer.py starts it): a client that gets opaque access tokens by client
// credentials, and a resource server that introspects them (RFC 7662). Its tokens are kept
// in the run's Redis (redis_adapter.mjs), as a deployed oidc-provider keeps them.
// Usage: node server.mjs PORT CLIENT_SECRET RS_SECRET REDIS_URL KEY_PREFIX
import Provider from 'oidc-provider';

import { RedisAdapter, connect } from './redis_adapter.mjs';

const [port, clientSecret, rsSecret, redisUrl, keyPrefix] = process.argv.slice(2);
connect(redisUrl, keyPrefix);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  adapter: RedisAdapter,
  clients: [
    {
      client_id: 'peer-client',
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'api',
    },
    {
      client_id: 'peer-api',
      client_secret: rsSecret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['api'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  // tokens outlive the run (the default is 10 minutes)
  ttl: { ClientCredentials: 3600 },
  cookies: { keys: ['peer-cookie-key-not-used'] },
});

provider.listen(Number(port), '127.0.0.1');
