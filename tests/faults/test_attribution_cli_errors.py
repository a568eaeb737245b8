"""User errors in ``royaltysim attribution ...`` are messages with exit code 2, found before anything is
written; a crash-prone config no longer leaves a record that refuses its fix (issue 13, findings 4, 5, 7)."""

from __future__ import annotations

import resource
import sys

import pytest
from typer.testing import CliRunner

from royaltysim.cli import app
from tests.attribution.catalogue import cli, folder_digest, write_config


def _run(*args):
    result = CliRunner().invoke(app, ["attribution", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_heads_that_do_not_divide_the_width_are_a_config_error_and_the_fix_then_builds(work):
    bad = write_config(work, model={"n_head": 3})
    result = _run("build", bad, "--out", work / "new", "-q")
    assert result.exit_code == 2 and "model.n_head" in result.output and "d_model (16)" in result.output
    assert not (work / "new").exists()
    before = folder_digest(work / "run")
    assert _run("build", bad, "--out", work / "run", "-q").exit_code == 2
    assert folder_digest(work / "run") == before
    fixed = write_config(work, model={"n_head": 4})  # refused only as a change of the built run's model...
    assert "model.n_head 2 -> 4" in _run("build", fixed, "--out", work / "run", "-q").output
    result = _run("build", fixed, "--out", work / "new", "-q")  # ...and builds where the bad config failed
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "sections, named",
    [
        ({"trak": {"proj_dim": 500}}, "trak.proj_dim: 500"),
        ({"generation": {"length": 99}}, "generation.length: 99"),
        ({"train": {"checkpoints": [0.5, 2.0]}}, "train.checkpoints.1"),
        ({"name": "../../escape"}, "name"),
    ],
)
def test_config_errors_found_before_training(work, sections, named):
    result = _run("build", write_config(work, **sections), "--out", work / "new", "-q")
    assert result.exit_code == 2 and named in result.output
    assert not (work / "new").exists() and not (work.parent / "escape").exists()


def test_bad_out_folders_are_refused_before_any_work(work):
    (work / "file").write_text("x")
    result = _run("build", work / "cfg.yaml", "--out", work / "file", "-q")
    assert result.exit_code == 2 and "is a file" in result.output
    result = _run("build", work / "cfg.yaml", "--out", work / "file" / "run", "-q")
    assert result.exit_code == 2 and "cannot be created" in result.output


def test_config_files_that_are_not_configs(work):
    (work / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    result = _run("build", work / "latin1.yaml")
    assert result.exit_code == 2 and "not UTF-8" in result.output
    result = _run("build", work)
    assert result.exit_code == 2 and "is a folder" in result.output


def _limit_memory():  # 1.5 GB of address space: the old loader needed over 4 GB for the bomb
    resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))


def test_a_yaml_alias_bomb_is_refused_quickly_in_bounded_memory(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    assert (tmp_path / "bomb.yaml").stat().st_size < 700
    import subprocess

    code = "import sys; from royaltysim.cli import app; sys.exit(app())"
    result = subprocess.run(
        [sys.executable, "-c", code, "attribution", "build", str(tmp_path / "bomb.yaml"), "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "aliases" in result.stderr and "Traceback" not in result.stderr


def test_readers_refuse_a_run_whose_files_changed_after_thebuild(work):
    with open(work / "run" / "attribution.parquet", "ab") as fh:
        fh.write(b"\0")
    for command in (["show", work / "run"], ["passages", work / "run", "out000"]):
        result = _run(*command)
        assert result.exit_code == 2 and "attribution.parquet differs from what the build wrote" in result.output
    result = _run("show", work / "cfg.yaml")
    assert result.exit_code == 2


def test_a_real_process_prints_one_message_and_exits_2(work):
    """The same as a user sees it: a fresh process, stderr, no traceback."""
    transposed = write_config(work, train={"steps": 31})
    result = cli("attribution", "build", str(transposed), "--out", str(work / "run"), "-q")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "--force" in result.stderr
