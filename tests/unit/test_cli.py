from click.testing import CliRunner

from jobline import __version__
from jobline.cli import main


def test_help_describes_jobline() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Run batch data pipelines on Kubernetes" in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output
