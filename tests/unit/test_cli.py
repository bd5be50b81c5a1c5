import pathlib

import click
import pytest
from click.testing import CliRunner

from jobline import __version__
from jobline.cli import exit_status, main, parse_vars, table

COMMANDS = ["operator", "server", "crds", "start", "list", "get", "logs", "stop", "delete"]


def test_help_describes_jobline() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Run batch data pipelines on Kubernetes" in result.output
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_server_help_names_address_port_tls_and_credentials() -> None:
    shown = CliRunner().invoke(main, ["server", "--help"]).output
    for option in ("--address", "--port", "--tls-cert", "--tls-key", "--credentials"):
        assert option in shown
    assert "token" in shown and "kubeconfig" in shown


def test_server_wants_both_tls_files(tmp_path: pathlib.Path) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("x")
    result = CliRunner().invoke(main, ["server", "--tls-cert", str(cert)])
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_vars() -> None:
    assert parse_vars(("A=1", "B=x=y", "C=")) == {"A": "1", "B": "x=y", "C": ""}
    for bad in ("A", "=1"):
        with pytest.raises(click.BadParameter):
            parse_vars((bad,))


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"phase": "COMPLETE", "exitCode": 0}, 0),
        ({"phase": "ERROR", "exitCode": 3}, 3),
        ({"phase": "ERROR", "reason": "InvalidVariables"}, 1),
        ({"phase": "STOPPED"}, 1),
    ],
)
def test_exit_status(status: dict[str, object], code: int) -> None:
    assert exit_status(status) == code


def test_table_aligns_columns() -> None:
    assert table([["NAME", "X"], ["a-long-name", "1"]]) == "NAME          X\na-long-name   1"


def test_bad_var_is_one_line_without_traceback() -> None:
    result = CliRunner().invoke(main, ["start", "p", "--var", "oops"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "'oops' is not NAME=VALUE" in result.output
