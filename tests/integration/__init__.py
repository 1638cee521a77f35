"""
Integration tests against real processes: one-machine Slurm clusters (22.05 from this
machine's packages; 24.11 and 26.05 from Debian's, in the roots ``.ci/build-slurm-chroots``
builds), Prometheus and supervisord. They need Debian's packages (``sudo bash
.ci/install-system-packages``), those roots and root; without them they skip, except under
``CI=true``, where they fail.
"""
