"""One-line CLI errors with kubectl's did-you-mean, for mistyped commands and resource types."""

from __future__ import annotations

import pytest

from kubelite.cli import common, main


def test_unknown_command_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["gte", "pods"]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: unknown command "gte" for "kubelite"\n\nDid you mean this?\n\tget\n')
    assert "Traceback" not in err


def test_unknown_command_without_a_close_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["qqqqqq"]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: unknown command "qqqqqq" for "kubelite"') and "Did you mean" not in err


def test_unknown_resource_type_suggests_a_served_resource() -> None:
    with pytest.raises(common.CliError) as exc:
        common.resolve_type("pdos")
    assert str(exc.value) == 'the server doesn\'t have a resource type "pdos"\n\nDid you mean this?\n\tpods'
    with pytest.raises(common.CliError) as exc:
        common.split_type_names(["deploymnet"])
    assert str(exc.value).endswith("Did you mean this?\n\tdeployments")
    with pytest.raises(common.CliError) as exc:
        common.resolve_type("zzzzzz")
    assert str(exc.value) == 'the server doesn\'t have a resource type "zzzzzz"'


def test_get_with_a_typo_prints_one_error_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["get", "pdos", "--server", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err == 'error: the server doesn\'t have a resource type "pdos"\n\nDid you mean this?\n\tpods\n'
