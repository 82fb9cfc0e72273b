"""The original ``inferedgeforge.handoff`` worker/runtime summary functions (docs/contract.md#worker-summary)."""

from pytest_inferedgeforge.handoff.lab import worker_runtime_summary as build_worker_runtime_summary

metadata_to_worker_runtime_summary = build_worker_runtime_summary

__all__ = ["build_worker_runtime_summary", "metadata_to_worker_runtime_summary"]
