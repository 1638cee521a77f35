"""slurm-sd: Prometheus HTTP service discovery for Slurm, fed by slurmrestd."""
from slurm_sd._version import __version__

__all__ = ["__version__"]
