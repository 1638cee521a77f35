"""Tests for slurm_sd.config."""
