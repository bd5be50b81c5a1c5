"""The `jobline` command (also installed as `kubectl-jobline`)."""

import click

from jobline import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobline")
def main() -> None:
    """Run batch data pipelines on Kubernetes.

    Pipelines say what to run and when; each run is a PipelineJob that
    Jobline turns into a Kubernetes Job.
    """
