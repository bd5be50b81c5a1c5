"""The `jobline` command (also installed as `kubectl-jobline`)."""

from __future__ import annotations

import logging

import click

from jobline import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobline")
def main() -> None:
    """Run batch data pipelines on Kubernetes.

    Pipelines say what to run and when; each run is a PipelineJob that
    Jobline turns into a Kubernetes Job.
    """


@main.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable). Default: all namespaces.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log debug messages too.")
def operator(namespaces: tuple[str, ...], verbose: bool) -> None:
    """Run the Jobline operator against the current kubeconfig's cluster."""
    import kopf
    from kubernetes.config import ConfigException

    from jobline.controller import handlers  # registers the handlers

    try:
        handlers.kube_api_client().close()  # type: ignore[no-untyped-call]
    except ConfigException as e:
        raise click.ClickException(f"no cluster to run against: {e}") from None

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes", "urllib3", "aiohttp", "kopf.objects"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        memo=kopf.Memo(namespaces=list(namespaces)),
    )


@main.command()
def crds() -> None:
    """Print the CustomResourceDefinitions (kubectl apply -f - installs them)."""
    from jobline.crds import render_all

    click.echo(render_all(), nl=False)


if __name__ == "__main__":
    main()
