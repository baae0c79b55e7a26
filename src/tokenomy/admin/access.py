"""What an admin key may see and change: the team-admin rule, in one place.

A **global** admin key (no team) sees and changes everything.

A **team admin** key is bound to one team *of one org*, (O, T): team names are unique only
within an org, so org ``globex``'s team ``t1`` is none of the business of ``acme``'s ``t1``
admin. Every query below filters on both O and T.

* *API keys* — sees only keys of org O and team T; keys it creates get org O and team T
  (it cannot mint keys in another org and slip out from under an ``org:`` budget);
  revokes only keys of (O, T).
* *Budgets and rate limits* — sees and manages only those on ``key:K`` for API keys K of
  (O, T), and on ``team:T`` while no other org has API keys of a team named T: budget
  scopes name the team alone, so ``team:T`` would otherwise also limit the other org's
  team T (then only a global admin may manage it). Not ``org:``, ``user:`` or
  ``agent:``: those scopes span teams (a user's or an agent's requests may come through
  keys of several teams, and the gateway charges a ``user:`` budget for all of them), so
  reading or changing them would reach into other teams. Transfers move limit only
  between scopes it manages.
* *Usage* — always filtered to ``org = O`` and ``team = T``; asking for another org or
  team is refused.
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
from tokenomy.ledger.store import ApiKey, Store

OUTSIDE = "(another team)"


@dataclass(frozen=True, slots=True)
class Scopes:
    """The budget scopes one admin key may see and manage."""

    team: str | None  # None: a global admin, every scope
    key_ids: frozenset[str] = frozenset()
    org: str | None = None
    team_scope: bool = True  # team:T is the team's alone (no other org has a team T)

    def allows(self, scope: str) -> bool:
        if self.team is None:
            return True
        kind, _, value = scope.partition(":")
        if kind == "team":
            return self.team_scope and value == self.team
        return kind == "key" and value in self.key_ids

    def require(self, scope: str) -> None:
        """Raise 403 unless this admin may manage budgets on ``scope``."""
        if not self.allows(scope):
            t = self.team
            raise PermissionDenied(
                f"A team admin of {t!r} (org {self.org!r}) may manage budgets and rate limits "
                f"only on key:KEY_ID for API keys of that team, and on team:{t} unless another "
                f"org also has a team {t!r}; {_short(scope)} is outside it.",
                param="scope",
            )


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _org(who: AdminPrincipal) -> str:
    # authenticate() binds every team admin to an org; fail closed should one slip through.
    if who.org is None:
        raise PermissionDenied("This team admin key is bound to no org; re-create it with --org.")
    return who.org


def _team_keys(store: Store, who: AdminPrincipal) -> tuple[list[ApiKey], bool]:
    """API keys of ``who``'s (org, team), revoked included, and whether no other org
    has keys of a team with the same name."""
    same_name = store.list_keys(include_revoked=True, team=who.team)
    mine = [k for k in same_name if k.org == who.org]
    return mine, len(mine) == len(same_name)


def scopes_for(store: Store, who: AdminPrincipal) -> Scopes:
    """The scopes ``who`` may manage (one query for a team admin, none for a global one)."""
    if who.team is None:
        return Scopes(None)
    # Revoked keys stay included: their budgets are the team's history to read or remove.
    keys, alone = _team_keys(store, who)
    return Scopes(who.team, frozenset(k.key_id for k in keys), who.org, alone)


def visible_keys(store: Store, who: AdminPrincipal, include_revoked: bool) -> list[ApiKey]:
    """The API keys ``who`` may see: all for a global admin, else those of its (org, team)."""
    keys = store.list_keys(include_revoked, who.team)
    if who.team is None:
        return keys
    return [k for k in keys if k.org == who.org]


def require_key(store: Store, who: AdminPrincipal, key_id: str) -> None:
    """Raise 403 unless ``who`` may manage the API key ``key_id``."""
    if who.team is None:
        return
    if key_id not in scopes_for(store, who).key_ids:
        raise PermissionDenied(
            f"A team admin of {who.team!r} (org {who.org!r}) may manage only API keys of that "
            f"team; {_short(key_id)!r} is not one of them."
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
            f"cannot create one for team {_short(team or '')!r}.",
            param="team",
        )
    if org not in (None, "", who.org):
        raise PermissionDenied(
            f"A team admin of {who.team!r} creates keys only in its own org {who.org!r}; "
            f"not in {_short(org or '')!r}.",
            param="org",
        )
    return _org(who), who.team


def usage_filters(who: AdminPrincipal, filters: dict[str, str]) -> dict[str, str]:
    """The usage report filters with the team-admin rule applied (org and team forced)."""
    if who.team is None:
        return filters
    for name, own in (("org", _org(who)), ("team", who.team)):
        asked = filters.get(name)
        if asked is not None and asked != own:
            raise PermissionDenied(
                f"A team admin of {who.team!r} (org {who.org!r}) sees only that team's "
                f"usage; cannot filter on {name}={_short(asked)}.",
                param="where",
            )
    return {**filters, "org": _org(who), "team": who.team}


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
