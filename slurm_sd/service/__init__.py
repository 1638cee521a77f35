"""The running daemon: the cache being served, the poll loop, and SIGHUP reloads."""
