"""Budgets and rate limits that cannot be overspent: scopes, periods, leases, settlement."""
