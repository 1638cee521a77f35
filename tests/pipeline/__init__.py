"""Tests for slurm_sd.pipeline."""
