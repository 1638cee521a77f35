"""Tests for slurm_sd.web."""
