"""The [policy] section: classes → allowed places, per org and team, with provider attributes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tokenomy.config import parse_config
from tokenomy.errors import ConfigError
from tokenomy.sovereignty import DETECTORS, Policy, Verdict

PROVIDERS = {
    "box": {"kind": "openai", "base_url": "http://box.local/v1", "location": "local"},
    "us": {"kind": "openai", "base_url": "https://us.test/v1", "region": "us-east-1"},
    "eu_zdr": {
        "kind": "openai",
        "base_url": "https://eu.test/v1",
        "region": "eu-west-1",
        "retention": "zdr",
    },
    "cn": {"kind": "openai", "base_url": "https://cn.test/v1", "region": "cn-hangzhou"},
}


def load(policy: dict[str, Any]) -> tuple[Policy, dict[str, Any]]:
    s = parse_config({"providers": PROVIDERS, "policy": policy})
    return s.policy, s.providers


def allowed(policy: Policy, providers: dict[str, Any], cls: str, **who: str) -> set[str]:
    return {n for n, p in providers.items() if policy.allows(cls, p, **who)}


ALL = set(PROVIDERS)


def test_the_issue_example_keeps_confidential_and_restricted_local() -> None:
    p, providers = load({"confidential": ["local"], "restricted": ["local"]})
    assert p.restrictive
    assert allowed(p, providers, "public") == allowed(p, providers, "internal") == ALL
    assert allowed(p, providers, "confidential") == allowed(p, providers, "restricted") == {"box"}


def test_an_unset_class_inherits_the_next_less_strict_rule() -> None:
    p, providers = load({"confidential": ["local"]})
    assert allowed(p, providers, "restricted") == {"box"}
    p, providers = load({})
    assert not p.restrictive and allowed(p, providers, "restricted") == ALL


def test_region_and_retention_constrain_cloud_providers_only() -> None:
    p, providers = load(
        {
            "confidential": {
                "locations": ["local", "cloud"],
                "regions": ["eu-*"],
                "retention": ["zdr"],
            }
        }
    )
    assert allowed(p, providers, "confidential") == {"box", "eu_zdr"}
    p, providers = load(
        {"confidential": {"locations": ["cloud", "local"], "regions": ["us-*", "cn-*"]}}
    )
    assert allowed(p, providers, "confidential") == {"box", "us", "cn"}
    p, providers = load({"internal": {"retention": ["zdr", "30d"]}})
    assert allowed(p, providers, "internal") == {"box", "eu_zdr"}


def test_teams_and_orgs_override_per_class_most_specific_first() -> None:
    p, providers = load(
        {
            "confidential": ["local"],
            "restricted": ["local"],
            "teams": {
                "research": {
                    "confidential": {"locations": ["cloud", "local"], "retention": ["zdr"]}
                }
            },
            "orgs": {
                "acme": {
                    "internal": ["local"],
                    "teams": {"research": {"confidential": ["cloud", "local"]}},
                },
                "globex": {"restricted": ["cloud", "local"]},
            },
        }
    )
    assert allowed(p, providers, "confidential", org="initech", team="research") == {
        "box",
        "eu_zdr",
    }
    assert allowed(p, providers, "confidential", org="acme", team="research") == ALL
    assert allowed(p, providers, "confidential", org="acme", team="sales") == {"box"}
    assert allowed(p, providers, "internal", org="acme", team="research") == {"box"}
    assert allowed(p, providers, "internal", org="initech", team="research") == ALL
    assert allowed(p, providers, "restricted", org="globex", team="x") == ALL
    assert allowed(p, providers, "restricted", org="initech", team="research") == {"box"}


def test_a_refusal_names_the_class_the_reason_and_the_rule() -> None:
    p, providers = load(
        {"confidential": ["local"], "teams": {"ops": {"confidential": {"regions": ["eu-*"]}}}}
    )
    v = Verdict("confidential", "email address in messages[0].content")
    assert p.refusal(v, providers["box"]) is None
    assert p.refusal(v, providers["us"]) == (
        "confidential data may not go to provider 'us': its location 'cloud' is not allowed "
        "(allowed: local) ([policy] confidential)"
    )
    assert p.refusal(v, providers["cn"], "acme", "ops") == (
        "confidential data may not go to provider 'cn': its region 'cn-hangzhou' is not "
        "allowed (allowed: eu-*) ([policy.teams.ops] confidential)"
    )
    assert p.refusal(Verdict("restricted", "header"), providers["us"]) is not None
    assert p.refusal(Verdict("internal", "no detection"), providers["us"]) is None


def test_a_provider_without_a_region_fails_a_region_rule() -> None:
    s = parse_config(
        {
            "providers": {"x": {"kind": "openai", "base_url": "https://x.test/v1"}},
            "policy": {"internal": {"regions": ["*"]}},
        }
    )
    why = s.policy.refusal(Verdict("internal", "no detection"), s.providers["x"])
    assert why is not None and "region is not configured" in why


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        ({"confidential": ["moon"]}, "policy.confidential.locations[0]"),
        ({"secret": ["local"]}, "policy.secret"),
        ({"default_class": "top"}, "policy.default_class"),
        ({"detectors": {"passport": "restricted"}}, "policy.detectors.passport"),
        ({"detectors": {"email": "loud"}}, "policy.detectors.email"),
        ({"phone_regions": ["XX"]}, "policy.phone_regions[0]"),
        ({"internal": {"retention": ["forever"]}}, "policy.internal.retention[0]"),
        ({"teams": {"t": {"confidential": ["nowhere"]}}}, "policy.teams.t.confidential"),
    ],
)
def test_mistakes_name_their_key(policy: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"policy": policy}, "t.toml")
    assert err.value.key.startswith(key), err.value


def test_phone_regions_reach_the_scanner() -> None:
    p, _ = load({"phone_regions": ["de", "US"]})
    assert p.phone_regions == ("DE", "US") and p.scanner.regions == ("DE", "US")


def test_the_documented_policy_is_a_valid_config() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "data-policy.md").read_text()
    data: dict[str, Any] = {}
    for block in re.findall(r"```toml\n(.*?)```", doc, re.S):
        for key, table in tomllib.loads(block).items():
            data.setdefault(key, {}).update(table)
    p = parse_config(data, "docs/data-policy.md").policy
    assert p.detectors and "us_ssn" not in {d.name for _, d in p.detectors}
    assert (
        p.rule("confidential", "acme", "legal").source
        == "[policy.orgs.acme.teams.legal] confidential"
    )
    # Every detector the docs' table names exists, and no other.
    documented = set(re.findall(r"^\| `(\w+)` \| (?:identifier|secret) \|", doc, re.M))
    assert documented == {d.name for d in DETECTORS}
