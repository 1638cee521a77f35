"""
Integration tests against real processes: a one-machine Slurm 22.05 cluster, Prometheus and
supervisord. They need Debian's packages (``sudo bash .ci/install-system-packages``) and
root; without them they skip, except under ``CI=true``, where they fail.
"""
