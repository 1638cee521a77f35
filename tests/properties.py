"""
The one place that says how hard the hypothesis property tests try.

Generating the examples is what they spend their time on, so the unit suite runs a
modest number of each (it must stay under 30 s); ``SLURM_SD_THOROUGH=1`` runs ten times
as many, for a nightly or pre-release run.
"""
import os

from hypothesis import HealthCheck, settings

#: How many times the unit suite's example counts are run.
SCALE = 10 if os.environ.get("SLURM_SD_THOROUGH") == "1" else 1


def property_settings(examples):
    """Hypothesis settings for a property test: ``examples`` examples (times :data:`SCALE`)."""
    return settings(max_examples=examples * SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
