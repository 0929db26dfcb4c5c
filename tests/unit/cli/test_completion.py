"""``kubelite completion``: the scripts parse, and bash really completes commands, types and -o values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubelite.cli import completion, main

ROOT = Path(__file__).resolve().parents[3]


def test_completion_is_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.COMMANDS["completion"] == "kubelite.cli.completion:main"
    assert main.main(["completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert "complete -F _kubelite kubelite" in out and " describe " in out and "deployments" in out
    assert main.main(["completion", "fish"]) == 1
    assert 'unsupported shell type "fish"' in capsys.readouterr().err
    assert main.main(["completion"]) == 1


def test_zsh_script_lists_everything() -> None:
    text = completion.script("zsh")
    assert text.startswith("#compdef kubelite")
    for word in ("get", "inspect", "pods", "deploy", "rs", "wide", "custom-columns="):
        assert word in text


def _complete(script: Path, words: list[str]) -> list[str]:
    """Run the bash completion function on ``kubelite <words>`` (last word being completed)."""
    line = " ".join(["kubelite", *words])
    prog = (f"source {script}; COMP_WORDS=(kubelite {' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words)}; COMP_LINE={line!r}; _kubelite; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=30, check=True).stdout
    return sorted(w for w in out.split("\n") if w)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_types_and_output_formats(tmp_path: Path) -> None:
    script = tmp_path / "kubelite.bash"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    script.write_text(subprocess.run([sys.executable, "-m", "kubelite", "completion", "bash"], env=env,
                                     capture_output=True, text=True, timeout=30, check=True).stdout)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert _complete(script, ["ge"]) == ["get"]
    assert "describe" in _complete(script, ["de"]) and "delete" in _complete(script, ["de"])
    assert set(_complete(script, ["get", "po"])) == {"pod", "pods", "po"}
    assert "deployments" in _complete(script, ["describe", "dep"])
    assert _complete(script, ["get", "pods", "-o", "w"]) == ["wide"]
    assert _complete(script, ["get", "pods", "-o", "cu"]) == ["custom-columns="]
    assert _complete(script, ["completion", "z"]) == ["zsh"]
    assert _complete(script, ["get", "pods", "x"]) == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_script_parses(tmp_path: Path) -> None:
    script = tmp_path / "_kubelite"
    script.write_text(completion.script("zsh"))
    assert subprocess.run(["zsh", "-n", str(script)]).returncode == 0
