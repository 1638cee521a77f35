"""
Target counts by job, cluster, partition and coarse state, read off served groups:
what ``slurm-sd dump --summary`` prints.
"""
from collections import Counter

#: The columns of a tally row, in order.
COLUMNS = ("job", "cluster", "partition", "state", "targets")


def _partitions(labels):
    """The partitions a group's targets count under (``""`` for none)."""
    if "__meta_slurm_partition" in labels:
        return (labels["__meta_slurm_partition"],)
    names = labels.get("__meta_slurm_partitions", "").strip(",")
    return tuple(names.split(",")) if names else ("",)


def tally(groups_by_job):
    """
    Count targets per (job, cluster, partition, coarse state).

    :param groups_by_job: job name -> its SD groups (plain JSON data), in order.
    :return: rows ``(job, cluster, partition, state, targets)``, jobs in the given
        order, then sorted; a target in two partitions counts under each, as it
        is in both partitions' groups; a job with no target has one row of 0.
    """
    rows = []
    for job, groups in groups_by_job.items():
        counts = Counter()
        for group in groups:
            labels = group["labels"]
            key = (labels.get("__meta_slurm_cluster", ""), labels.get("__meta_state", ""))
            for partition in _partitions(labels):
                counts[key[0], partition, key[1]] += len(group["targets"])
        if not counts:
            rows.append((job, "", "", "", 0))
        rows += [(job, *key, count) for key, count in sorted(counts.items())]
    return rows


def table(rows):
    """``rows`` as a text table with a header, columns padded, one row a line."""
    cells = [tuple(name.upper() for name in COLUMNS)]
    cells += [tuple(str(value) if value != "" else "-" for value in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = []
    for row in cells:
        # Text left, the count right.
        lines.append("  ".join([cell.ljust(width) for cell, width in zip(row[:-1], widths)]
                               + [row[-1].rjust(widths[-1])]))
    return "\n".join(lines) + "\n"
