"""The process step: decode, convert and render a node list, and where that runs."""
