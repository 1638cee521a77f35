"""twistd plugin: ``twistd -n slurm-sd --config PATH``."""
from twisted.application.service import ServiceMaker

slurmSD = ServiceMaker(
    "slurm-sd",
    "slurm_sd.tap",
    "Prometheus HTTP service discovery for Slurm",
    "slurm-sd",
)
