import pathlib
import re

import click
import pytest
from click.testing import CliRunner, Result

from jobline import __version__
from jobline.cli import exit_status, main, parse_vars, table

COMMANDS = ["operator", "server", "crds", "start", "list", "get", "logs", "stop", "delete"]
HELP = {"-h", "--help"}


def test_help_describes_jobline() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Run batch data pipelines on Kubernetes" in result.output
    commands = result.output.split("\nCommands:\n", 1)[1].splitlines()
    assert sorted(line.split()[0] for line in commands if line.strip()) == sorted(COMMANDS)


def options_listed(help_text: str) -> set[str]:
    """The option names of the help's Options section (each entry's first column)."""
    section = help_text.split("\nOptions:\n", 1)[1]
    names: set[str] = set()
    for line in section.splitlines():
        if re.match(r"  -", line):  # an entry; its description's lines are indented more
            entry = line.strip().split("  ")[0]  # as "-o, --output [text|ndjson]"
            names |= set(re.findall(r"(?:^|[ ,/])(--?[A-Za-z][\w-]*)", entry))
    return names


# What each command's --help must show: the arguments after [OPTIONS] in its usage
# line, its options (besides -h/--help), and facts of their values.
HELP_OF: dict[str, tuple[str, set[str], list[str]]] = {
    "operator": (
        "",
        {
            "-n",
            "--namespace",
            "-v",
            "--verbose",
            "--log-format",
            "--metrics-address",
            "--health-address",
            "--leader-elect",
            "--no-leader-elect",
            "--leader-election-namespace",
        },
        ["[text|json]", "[default: 127.0.0.1:9090]", "[default: 127.0.0.1:8081]"],
    ),
    "server": (
        "",
        {
            "--address",
            "--port",
            "--credentials",
            "--tls-cert",
            "--tls-key",
            "--allowed-host",
            "--max-followers",
            "--run-index",
            "--no-run-index",
            "--index-namespace",
        },
        ["[token|kubeconfig]", "[default: 127.0.0.1]", "[default: 8080]"],
    ),
    "crds": ("", set(), ["kubectl apply -f -"]),
    "start": (
        " PIPELINE",
        {"--var", "--priority", "--wait", "-f", "--follow"},
        ["--var NAME=VALUE", "[default: 0]"],
    ),
    "list": ("", {"-p", "--pipeline", "-A", "--all-namespaces"}, []),
    "get": (" RUN", {"-o", "--output", "--show-managed-fields"}, ["[table|json|yaml]"]),
    "logs": (
        " RUN",
        {"--from", "--sequence", "-f", "--follow", "-o", "--output", "--server"},
        ["[text|ndjson]", "[default: 0; x>=0]", "JOBLINE_ARCHIVE_BUCKET", "$JOBLINE_SERVER"],
    ),
    "stop": (" RUN", set(), ["STOPPED"]),
    "delete": (" RUN", set(), []),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_shows_its_own_arguments_and_options(command: str) -> None:
    arguments, options, shown = HELP_OF[command]
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=80)
    assert result.exit_code == 0
    usage = result.stdout.splitlines()[0]
    assert re.fullmatch(rf"Usage: \S+ {command} \[OPTIONS\]{arguments}", usage)
    assert options_listed(result.stdout) == options | HELP
    words = " ".join(result.stdout.split())  # as wrapped at any width
    for fact in shown:
        assert fact in words
    assert result.stderr == ""


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


def assert_one_error_line(result: Result, code: int, culprit: str) -> None:
    """Exit status `code`, nothing on stdout, and on stderr one error line that names
    `culprit` (after click's usage hint, for a usage mistake); never a traceback."""
    assert result.exit_code == code
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and culprit in errors[0]
    assert all(line.startswith(("Usage: ", "Try ")) for line in lines if line not in errors)


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["start", "p", "--var", "oops"], "'oops' is not NAME=VALUE"),
        (["start", "p", "--var", "=1"], "'=1'"),
        (["start", "p", "--bogus"], "--bogus"),
        (["start"], "PIPELINE"),
        (["start", "p", "--priority", "high"], "'high'"),
        (["frobnicate"], "frobnicate"),
        (["get", "r", "-o", "xml"], "'xml'"),
        (["logs", "r", "--from", "-1"], "-1"),
        (["logs", "r", "-o", "json"], "'json'"),
        (["list", "--all"], "--all"),
        (["stop"], "RUN"),
        (["delete", "a", "b"], "(b)"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_usage_mistake_is_one_error_line_and_status_2(args: list[str], culprit: str) -> None:
    assert_one_error_line(CliRunner().invoke(main, args, terminal_width=80), 2, culprit)


@pytest.mark.parametrize(
    "command", [["get", "r"], ["stop", "r"], ["delete", "r"], ["list"]], ids=" ".join
)
def test_no_usable_kubeconfig_is_one_line_and_status_1(
    command: list[str], tmp_path: pathlib.Path
) -> None:
    missing = str(tmp_path / "no-such-kubeconfig")
    result = CliRunner().invoke(main, ["--kubeconfig", missing, *command])
    assert_one_error_line(result, 1, "kubeconfig")
    assert result.stderr.count("\n") == 1  # not a usage mistake: no usage hint either
