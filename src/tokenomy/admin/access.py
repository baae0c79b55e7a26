"""What an admin key may see and change: the team-admin rule, in one place.

A **global** admin key (no team) sees and changes everything.

A **team admin** key of team T:

* *API keys* — sees only keys whose team is T; keys it creates get team T, in an org that
  team T's keys already use (so a team admin cannot mint keys in a made-up org and slip
  out from under an ``org:`` budget); revokes only keys of team T.
* *Budgets and rate limits* — sees and manages only those on ``team:T`` and on ``key:K``
  for API keys K of team T. Not ``org:``, ``user:`` or ``agent:``: those scopes span
  teams (a user's or an agent's requests may come through keys of several teams, and the
  gateway charges a ``user:`` budget for all of them), so reading or changing them would
  reach into other teams. Transfers move limit only between scopes it manages.
* *Usage* — always filtered to ``team = T``; asking for another team is refused.
* *Audit trail* — entries of the budgets it manages; a transfer's counterpart outside
  the team reads ``(another team)``.

Anything outside these bounds is refused with 403 and a message naming the rule. The
answer is the same whether or not the other team's key or budget exists, so a refusal
reveals nothing about other teams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenomy.admin.keys import AdminPrincipal
from tokenomy.budgets import storage
from tokenomy.errors import InvalidRequest, PermissionDenied
from tokenomy.ledger.store import Store

OUTSIDE = "(another team)"


@dataclass(frozen=True, slots=True)
class Scopes:
    """The budget scopes one admin key may see and manage."""

    team: str | None  # None: a global admin, every scope
    key_ids: frozenset[str] = frozenset()

    def allows(self, scope: str) -> bool:
        if self.team is None:
            return True
        kind, _, value = scope.partition(":")
        return (kind == "team" and value == self.team) or (kind == "key" and value in self.key_ids)

    def require(self, scope: str) -> None:
        """Raise 403 unless this admin may manage budgets on ``scope``."""
        if not self.allows(scope):
            t = self.team
            raise PermissionDenied(
                f"A team admin of {t!r} may manage budgets and rate limits only on team:{t} "
                f"and on key:KEY_ID for API keys of team {t!r}; {scope} is outside it.",
                param="scope",
            )


def scopes_for(store: Store, who: AdminPrincipal) -> Scopes:
    """The scopes ``who`` may manage (one query for a team admin, none for a global one)."""
    if who.team is None:
        return Scopes(None)
    # Revoked keys stay included: their budgets are the team's history to read or remove.
    keys = store.list_keys(include_revoked=True, team=who.team)
    return Scopes(who.team, frozenset(k.key_id for k in keys))


def require_key(store: Store, who: AdminPrincipal, key_id: str) -> None:
    """Raise 403 unless ``who`` may manage the API key ``key_id``."""
    if who.team is None:
        return
    if key_id not in scopes_for(store, who).key_ids:
        raise PermissionDenied(
            f"A team admin of {who.team!r} may manage only API keys of team {who.team!r}; "
            f"{key_id!r} is not one of them."
        )


def new_key_owner(
    store: Store, who: AdminPrincipal, org: str | None, team: str | None
) -> tuple[str, str]:
    """(org, team) of an API key ``who`` creates, after applying the team-admin rule."""
    if who.team is None:
        if not org:
            raise InvalidRequest(
                "org: a key needs an org (the organisation it bills to)", param="org"
            )
        return org, team or ""
    if team not in (None, "", who.team):
        raise PermissionDenied(
            f"A team admin of {who.team!r} creates keys of team {who.team!r} only; "
            f"cannot create one for team {team!r}.",
            param="team",
        )
    orgs = sorted({k.org for k in store.list_keys(include_revoked=True, team=who.team)})
    if not orgs:
        raise PermissionDenied(
            f"Team {who.team!r} has no API key yet, so its org is unknown: ask a global admin "
            "to create the team's first key."
        )
    if org is None or org == "":
        if len(orgs) > 1:
            raise InvalidRequest(
                f"org: team {who.team!r} has keys in several orgs ({', '.join(orgs)}); say "
                "which one",
                param="org",
            )
        return orgs[0], who.team
    if org not in orgs:
        raise PermissionDenied(
            f"A team admin of {who.team!r} creates keys only in the org(s) of the team's "
            f"keys ({', '.join(orgs)}); not in {org!r}.",
            param="org",
        )
    return org, who.team


def usage_filters(who: AdminPrincipal, filters: dict[str, str]) -> dict[str, str]:
    """The usage report filters with the team-admin rule applied (team forced)."""
    if who.team is None:
        return filters
    asked = filters.get("team")
    if asked is not None and asked != who.team:
        raise PermissionDenied(
            f"A team admin of {who.team!r} sees only team {who.team!r}'s usage; "
            f"cannot filter on team={asked}.",
            param="where",
        )
    return {**filters, "team": who.team}


def _scope_of(budget_id: str) -> str:
    # budget ids are ``kind/scope/unit``; a scope's name may itself contain '/'.
    return budget_id.partition("/")[2].rpartition("/")[0]


def audit_for(store: Store, scopes: Scopes, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most recent audit entries that ``scopes`` may see."""
    if scopes.team is None:
        return storage.audit_trail(store, limit)
    # audit_trail has no scope filter, so read a growing window of recent entries until
    # enough of them are the team's or the trail runs out.
    window = limit
    while True:
        rows = storage.audit_trail(store, window)
        visible = [r for r in rows if scopes.allows(_scope_of(r["budget_id"]))]
        if len(visible) >= limit or len(rows) < window:
            break
        window *= 4
    out = visible[:limit]
    for r in out:
        detail = r["detail"]
        for end in ("from", "to"):
            if isinstance(detail.get(end), str) and not scopes.allows(detail[end]):
                detail[end] = OUTSIDE
    return out
