"""
Several clusters in one daemon (SPEC 10): each :class:`Cluster` is one instance of the
pipeline (source, poll loop, cache, worker); :class:`ClusterSet` holds them in config
order and keeps the all-clusters answer, :class:`MergedCache`, prebuilt per poll.
"""
from twisted.application.service import MultiService

from slurm_sd.pipeline.render import merge_snapshots
from slurm_sd.pipeline.runner import PipelineService
from slurm_sd.service.poller import PollerService


class Cluster(MultiService):
    """
    One cluster's pipeline as a service: started and stopped whole, e.g. when a
    reload adds or removes the cluster.

    :param name: the cluster's name (``&cluster=``, logs, metrics).
    :param cache: its :class:`~slurm_sd.service.cache.TargetCache`.
    :param poller: its :class:`~slurm_sd.service.poller.Poller`; ``poller.config``
        is its single-cluster configuration in effect.
    :param pipeline: optional; its process step, whose workers are stopped with it.
    """

    def __init__(self, name, cache, poller, pipeline=None):
        MultiService.__init__(self)
        self.name = name
        self.cache = cache
        self.poller = poller
        if pipeline is not None:
            # Added first, so stopped last: after the poller has cancelled its poll.
            PipelineService(pipeline).setServiceParent(self)
        PollerService(poller).setServiceParent(self)


class MergedCache:
    """
    Every cluster's data as one cache (what ``/targets`` without ``&cluster=``
    serves): a snapshot only once every cluster has one, the age of the oldest.
    """

    def __init__(self, clusters):
        self._clusters = clusters
        self._merged = None

    @property
    def snapshot(self):
        """The all-clusters :class:`~slurm_sd.pipeline.render.Snapshot`, or None."""
        clusters = self._clusters.clusters()
        if len(clusters) == 1:
            return clusters[0].cache.snapshot
        return self._merged

    def rebuild(self):
        """Join the clusters' bodies again: after a poll replaced one of them."""
        snapshots = [cluster.cache.snapshot for cluster in self._clusters.clusters()]
        if len(snapshots) < 2 or None in snapshots:
            self._merged = None
        else:
            self._merged = merge_snapshots(snapshots)

    def age(self):
        """Seconds since the oldest cluster's data was taken; None while one has none."""
        ages = [cluster.cache.age() for cluster in self._clusters.clusters()]
        if not ages or None in ages:
            return None
        return max(ages)

    def retry_after(self):
        """Whole seconds until the next poll of a cluster still without data (else 1)."""
        waiting = [cluster.cache.retry_after() for cluster in self._clusters.clusters()
                   if cluster.cache.snapshot is None]
        return min(waiting) if waiting else 1


class ClusterSet(MultiService):
    """
    The daemon's clusters, in config order, as the parent service of their
    :class:`Cluster` services.

    :param config: the whole :class:`~slurm_sd.config.model.Config` in effect
        (:attr:`config`; the web resources read it, a reload replaces it).
    """

    def __init__(self, config):
        MultiService.__init__(self)
        self.config = config
        self._by_name = {}
        self.merged = MergedCache(self)

    @classmethod
    def of_one(cls, cache, poller):
        """A set of the one cluster that ``poller`` (or anything with ``config``) fills
        ``cache`` for, not started: for a resource tree over a lone cache."""
        clusters = cls(poller.config)
        name, _ = poller.config.cluster_configs()[0]
        clusters.add(Cluster(name, cache, poller))
        return clusters

    def clusters(self):
        """The clusters, in config order."""
        return list(self._by_name.values())

    def names(self):
        """The clusters' names, in config order."""
        return list(self._by_name)

    def get(self, name):
        """The cluster called ``name``, or None."""
        return self._by_name.get(name)

    def add(self, cluster):
        """Add (and, if running, start) ``cluster``, last in order."""
        self._by_name[cluster.name] = cluster
        cluster.cache.replaced = self.merged.rebuild
        cluster.setServiceParent(self)
        self.merged.rebuild()

    def remove(self, name):
        """Stop and forget the cluster called ``name``; the Deferred of its stop."""
        cluster = self._by_name.pop(name)
        self.merged.rebuild()
        return cluster.disownServiceParent()

    def rename(self, old, new):
        """Call the cluster ``old`` ``new`` from now on (its order kept)."""
        self._by_name = {new if name == old else name: cluster
                         for name, cluster in self._by_name.items()}
        self._by_name[new].name = new
        self.namedServices[new] = self.namedServices.pop(old)

    def reorder(self, names):
        """Put the clusters in the order of ``names`` (every current name, once)."""
        self._by_name = {name: self._by_name[name] for name in names}
        self.merged.rebuild()
