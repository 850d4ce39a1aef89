"""Revoking every grant of one subject or one client, and the indexes that find them.

A token is valid only while its grant record exists, so revoking a grant is deleting
one key (:meth:`Store.revoke_grant`). To find the grants of a subject or a client,
each grant id goes into two store indexes when the grant is created, and again
whenever a refresh extends the grant's life:

- ``sub_grants``, keyed by the merchant-facing ``sub`` (the one in ID tokens,
  userinfo and introspection: pairwise under ``subject.type: pairwise``);
- ``client_grants``, keyed by the client_id.

The store hashes both into the key (a sub is personal data); the members are grant
ids, which are no credential: nothing accepts a grant id from outside. An entry
lives as long as its grant can; one whose grant is already gone (revoked, expired)
is harmless, and pruned when a revocation meets it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from proxy.records import Grant
from proxy.store import Store

SUB_GRANTS = "sub_grants"
CLIENT_GRANTS = "client_grants"

Selector = Literal["sub", "grant", "client"]
SELECTORS: tuple[Selector, ...] = ("sub", "grant", "client")
_INDEX_OF = {"sub": SUB_GRANTS, "client": CLIENT_GRANTS}


@dataclass(frozen=True)
class Revoked:
    grants: int  # live grants that this call revoked
    stale: int  # index entries whose grant was already gone, now pruned


async def index_grant(store: Store, grant: Grant, ttl: int) -> None:
    """Make ``grant`` findable by its sub and its client for ``ttl`` seconds (its own TTL).
    Call it after the grant record is written: an index entry then always has had its
    grant, so a revocation that finds the grant gone may prune the entry."""
    await store.index_add(SUB_GRANTS, grant.sub, grant.grant_id, ttl)
    await store.index_add(CLIENT_GRANTS, grant.client_id, grant.grant_id, ttl)


async def revoke_grants(store: Store, selector: Selector, value: str) -> Revoked:
    """Revoke every live grant of the sub or client ``value``, or the grant ``value``:
    each of its codes, access and refresh tokens (and the bank tokens the grant holds)
    stops being usable at once. Revoked and stale entries leave the indexes.

    What exists when this runs is revoked; a login finishing at the same moment may
    escape it (run it again)."""
    if selector == "grant":
        candidates = {value}
    else:
        candidates = await store.index_members(_INDEX_OF[selector], value)
    prune: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    revoked = stale = 0
    for grant_id in sorted(candidates):
        data = await store.find(Grant.kind, grant_id)
        if data is None:
            if selector != "grant":
                stale += 1
                prune[(_INDEX_OF[selector], value)].append(grant_id)
            continue
        await store.revoke_grant(grant_id)
        revoked += 1
        grant = Grant.from_json(data)
        prune[(SUB_GRANTS, grant.sub)].append(grant_id)
        prune[(CLIENT_GRANTS, grant.client_id)].append(grant_id)
    for (kind, key), members in prune.items():
        await store.index_remove(kind, key, members)
    return Revoked(grants=revoked, stale=stale)
