"""
The fetch step: sources that hand over a node list as bytes (or a spooled body).

Each source has ``fetch_nodes() -> Deferred[body]`` and ``where`` (for messages);
:func:`make_source` picks the one ``slurmrestd.url`` names.
"""
