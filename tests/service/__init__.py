"""Tests for slurm_sd.service."""
