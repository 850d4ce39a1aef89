// oidc-provider's storage in Redis, for the benchmark's peer: its default in-memory
// adapter is for development only (an LRU in the process: no restart, no second
// instance), so the peer keeps its tokens where the proxy keeps its own, one round trip
// per lookup, which is what a deployed oidc-provider pays. The adapter interface is
// oidc-provider's (upsert, find, findByUid, findByUserCode, consume, destroy,
// revokeByGrantId); values are JSON under PREFIX + model name + id, with the model's TTL.
import Redis from 'ioredis';

let client;
let prefix = 'peer:';

export function connect(url, keyPrefix) {
  client = new Redis(url, { lazyConnect: false, enableAutoPipelining: true });
  prefix = keyPrefix;
}

export function close() {
  return client?.quit();
}

export class RedisAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${prefix}${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const multi = client.multi();
    multi.set(key, JSON.stringify(payload), ...(expiresIn ? ['EX', expiresIn] : []));
    if (payload.grantId) {
      // revokeByGrantId finds every token of a grant through this set
      const grantKey = `${prefix}grant:${payload.grantId}`;
      multi.rpush(grantKey, key);
      if (expiresIn) multi.expire(grantKey, expiresIn);
    }
    if (payload.userCode) {
      multi.set(`${prefix}userCode:${payload.userCode}`, id, ...(expiresIn ? ['EX', expiresIn] : []));
    }
    if (payload.uid) {
      multi.set(`${prefix}uid:${payload.uid}`, id, ...(expiresIn ? ['EX', expiresIn] : []));
    }
    await multi.exec();
  }

  async find(id) {
    const data = await client.get(this.key(id));
    return data ? JSON.parse(data) : undefined;
  }

  async findByUid(uid) {
    const id = await client.get(`${prefix}uid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = await client.get(`${prefix}userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const key = this.key(id);
    const data = await client.get(key);
    if (!data) return;
    const ttl = await client.ttl(key);
    const payload = { ...JSON.parse(data), consumed: Math.floor(Date.now() / 1000) };
    await client.set(key, JSON.stringify(payload), ...(ttl > 0 ? ['EX', ttl] : []));
  }

  async destroy(id) {
    await client.del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `${prefix}grant:${grantId}`;
    const keys = await client.lrange(grantKey, 0, -1);
    await client.del(...keys, grantKey);
  }
}
