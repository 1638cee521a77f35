"""Tests for slurm_sd.sources."""
