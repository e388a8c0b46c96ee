"""Shared test configuration: hypothesis profiles (the strategies are in strategies.py)."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
# CI's second pass (the oldest declared NumPy) checks the same properties on fewer,
# still reproducible examples: the full pass above it ran 150 of each.
settings.register_profile("ci-second-pass", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CONVLIB_HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") else "dev"))
