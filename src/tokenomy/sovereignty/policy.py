"""The data policy: which data class may go where, globally and per org and team.

Built once from the ``[policy]`` section (``tokenomy.config.PolicySection``)::

    [policy]
    confidential = ["local"]                  # shorthand: locations only
    restricted = { locations = ["local"] }    # the table form
    [policy.teams.research]
    confidential = { locations = ["cloud", "local"], regions = ["eu-*"], retention = ["zdr"] }

A class without a rule in ``[policy]`` inherits the rule of the nearest less strict class
that has one (``confidential = ["local"]`` keeps ``restricted`` local too); ``public``
without a rule goes anywhere. For a request of org O and team T the rule of a class is the
first one set in ``[policy.orgs.O.teams.T]``, ``[policy.teams.T]``, ``[policy.orgs.O]``,
then the global one. ``regions`` (globs over the provider's ``region``) and ``retention``
(the provider's ``retention``) constrain cloud providers only: a local box keeps the data
on the premises, whatever its attributes say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from tokenomy.errors import ConfigError
from tokenomy.sovereignty.classes import CLASSES, RANK, STRICTEST
from tokenomy.sovereignty.detectors import BY_NAME, DETECTORS, Detector
from tokenomy.sovereignty.scan import Scanner

if TYPE_CHECKING:  # config builds the policy: importing it here would make a cycle
    from tokenomy.config import DataRuleSection, PolicyRulesSection, PolicySection, Provider
    from tokenomy.sovereignty.scan import Verdict

_LOCATIONS = frozenset({"cloud", "local"})
_DEFAULT_REGIONS = ["CN", "US"]


@dataclass(frozen=True, slots=True)
class Rule:
    """Where one data class may go, and which config table said so."""

    locations: frozenset[str] = _LOCATIONS
    regions: tuple[str, ...] | None = None
    retention: frozenset[str] | None = None
    source: str = "the default policy"

    @property
    def open(self) -> bool:
        """Whether the rule allows every provider."""
        return self.locations == _LOCATIONS and self.regions is None and self.retention is None

    def refusal(self, provider: Provider) -> str | None:
        """Why ``provider`` may not receive data under this rule, or None."""
        if provider.location not in self.locations:
            allowed = ", ".join(sorted(self.locations)) or "nowhere"
            return f"its location '{provider.location}' is not allowed (allowed: {allowed})"
        if provider.location != "cloud":
            return None
        if self.regions is not None:
            allowed = ", ".join(self.regions)
            if not provider.region:  # unknown: it could be anywhere
                return f"its region is not configured (allowed: {allowed})"
            if not any(fnmatchcase(provider.region, g) for g in self.regions):
                return f"its region '{provider.region}' is not allowed (allowed: {allowed})"
        if self.retention is not None and provider.retention not in self.retention:
            allowed = ", ".join(sorted(self.retention))
            return f"its retention '{provider.retention}' is not allowed (allowed: {allowed})"
        return None


def _rule(section: DataRuleSection, source: str) -> Rule:
    return Rule(
        frozenset(section.locations),
        tuple(section.regions) if section.regions is not None else None,
        frozenset(section.retention) if section.retention is not None else None,
        source,
    )


def _explicit(section: PolicyRulesSection, table: str) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for c in CLASSES:
        s = getattr(section, c)
        if s is not None:
            rules[c] = _rule(s, f"[{table}] {c}")
    return rules


@dataclass(frozen=True, slots=True)
class Policy:
    """The resolved data policy; ``refusal`` answers whether a verdict may go to a provider."""

    default_class: str = "internal"
    phone_regions: tuple[str, ...] = tuple(_DEFAULT_REGIONS)
    # Detectors in the order they run (strictest class first), each with its class.
    detectors: tuple[tuple[str, Detector], ...] = ()
    rules: dict[str, Rule] = field(default_factory=lambda: {c: Rule() for c in CLASSES})
    teams: dict[str, dict[str, Rule]] = field(default_factory=dict)
    orgs: dict[str, dict[str, Rule]] = field(default_factory=dict)
    org_teams: dict[tuple[str, str], dict[str, Rule]] = field(default_factory=dict)
    scanner: Scanner = field(default_factory=Scanner, compare=False, repr=False)
    # Whether the client's label may lower the class below what the detectors find.
    label_may_lower: bool = True

    @property
    def strictest(self) -> str:
        """The class of what cannot be scanned, and of a detector's failure."""
        return STRICTEST

    @property
    def restrictive(self) -> bool:
        """Whether any rule refuses any provider (False: every class goes anywhere)."""
        levels = [self.rules, *self.teams.values(), *self.orgs.values(), *self.org_teams.values()]
        return any(not r.open for level in levels for r in level.values())

    @property
    def active(self) -> bool:
        """Whether requests need a verdict at all (the same as ``restrictive``)."""
        return self.restrictive

    def allows(
        self, data_class: str, provider: Provider, org: str | None = None, team: str | None = None
    ) -> bool:
        """Whether data of ``data_class`` may go to ``provider`` for ``org`` / ``team``."""
        return self.rule(data_class, org, team).refusal(provider) is None

    def rule(self, data_class: str, org: str | None = None, team: str | None = None) -> Rule:
        """The rule for ``data_class`` of a request of ``org`` / ``team``."""
        if org is not None and team is not None:
            r = self.org_teams.get((org, team), {}).get(data_class)
            if r is not None:
                return r
        if team is not None:
            r = self.teams.get(team, {}).get(data_class)
            if r is not None:
                return r
        if org is not None:
            r = self.orgs.get(org, {}).get(data_class)
            if r is not None:
                return r
        return self.rules[data_class]

    def refusal(
        self, verdict: Verdict, provider: Provider, org: str | None = None, team: str | None = None
    ) -> str | None:
        """None when ``provider`` may receive a request of this verdict; else why not."""
        rule = self.rule(verdict.data_class, org, team)
        why = rule.refusal(provider)
        if why is None:
            return None
        return (
            f"{verdict.data_class} data may not go to provider '{provider.name}': "
            f"{why} ({rule.source})"
        )


def build_policy(section: PolicySection, path: str = "<config>") -> Policy:
    """Resolve the ``[policy]`` section; ``ConfigError`` names the key of a mistake."""
    by_detection = {"identifier": section.identifiers, "secret": section.secrets}
    chosen: list[tuple[str, Detector]] = []
    for name in section.detectors:
        if name not in BY_NAME:
            known = ", ".join(sorted(BY_NAME))
            raise ConfigError(
                path, f"policy.detectors.{name}", f"unknown detector (known: {known})"
            )
    for d in DETECTORS:
        cls = section.detectors.get(d.name, by_detection[d.kind])
        if cls != "off":
            chosen.append((cls, d))
    # Strictest class first: the first detection is then the verdict.
    chosen.sort(key=lambda cd: -RANK[cd[0]])

    regions = [r.upper() for r in section.phone_regions]
    if regions != _DEFAULT_REGIONS:
        import phonenumbers

        for i, r in enumerate(regions):
            if r not in phonenumbers.SUPPORTED_REGIONS:
                raise ConfigError(
                    path, f"policy.phone_regions[{i}]", f"unknown region {r!r} (ISO 3166 code)"
                )

    explicit = _explicit(section, "policy")
    rules: dict[str, Rule] = {}
    previous = Rule()
    for c in CLASSES:  # an unset class inherits the nearest less strict class's rule
        rules[c] = previous = explicit.get(c, previous)
    teams = {t: _explicit(s, f"policy.teams.{t}") for t, s in section.teams.items()}
    orgs = {o: _explicit(s, f"policy.orgs.{o}") for o, s in section.orgs.items()}
    org_teams = {
        (o, t): _explicit(ts, f"policy.orgs.{o}.teams.{t}")
        for o, s in section.orgs.items()
        for t, ts in s.teams.items()
    }
    return Policy(
        section.default_class,
        tuple(regions),
        tuple(chosen),
        rules,
        teams,
        orgs,
        org_teams,
        Scanner(tuple(chosen), tuple(regions), section.scan_cache_entries),
        section.label_may_lower,
    )
