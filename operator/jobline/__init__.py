"""Jobline: batch data pipelines on Kubernetes, as Pipelines and PipelineJobs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jobline")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
