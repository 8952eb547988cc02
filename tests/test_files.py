"""Files written whole or not at all, read back with the damaged file named; storage errors as one line."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from trainlab import files
from trainlab.cli import main
from trainlab.errors import ConfigError, DataError


def test_write_text_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "summary.json"
    files.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "config.yaml"
    files.write_text(path, "old: 1\n")

    def half(f):
        f.write("new: ")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        files.write_atomic(path, half)
    assert path.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "free space"), (errno.EROFS, "writable"),
                                         (errno.EACCES, "writable by this user")])
def test_storage_errors_are_one_line_naming_the_path_and_leave_no_empty_file(tmp_path, monkeypatch, code, words):
    path = tmp_path / "summary.json"
    real_open = open

    def failing_open(file, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(code, os.strerror(code), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(files.StorageError, match=words) as info:
        files.write_json(path, {"a": 1})
    assert "\n" not in str(info.value) and "summary.json" in str(info.value) and "out_dir" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_read_jsonl_drops_only_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert files.read_jsonl(path) == [{"epoch": 1}, {"epoch": 2}]
    path.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(files.DamagedFileError, match=r"metrics.jsonl must hold one JSON object per line\. Got a "
                                                     r"damaged line 2"):
        files.read_jsonl(path)
    assert files.read_jsonl(tmp_path / "absent.jsonl") == []


def test_read_json_names_a_truncated_or_binary_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text('{"run": "a", "epo')
    with pytest.raises(files.DamagedFileError, match="summary.json must be JSON written by trainlab"):
        files.read_json(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(files.DamagedFileError, match="not text"):
        files.read_json(path)
    assert files.read_json(tmp_path / "absent.json", missing={}) == {}


def test_json_that_parses_but_is_not_an_object_is_a_damaged_file(tmp_path):
    # `[]` in summary.json or a string line in metrics.jsonl were AttributeErrors/TypeErrors in compare, resume, report
    path = tmp_path / "summary.json"
    for text, got in (("[]", r"a list \(\[\]\)"), ('"x"', r'a string \("x"\)'), ("3", r"a number \(3\)"), ("null", "null")):
        path.write_text(text)
        with pytest.raises(files.DamagedFileError, match=rf"summary\.json must hold the JSON object trainlab writes\. "
                                                         rf"Got {got}\. Delete it, or rerun\.$"):
            files.read_json(path)
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n"just a string"\n{"epoch": 3}\n')
    with pytest.raises(files.DamagedFileError, match=r'metrics\.jsonl must hold one JSON object per line\. Got a string '
                                                     r'\("just a string"\) at line 2\.'):
        files.read_jsonl(path)


def test_a_damaged_summary_or_metrics_file_is_one_line_in_compare_report_and_resume(tmp_path, capsys):
    from trainlab.cli import main as cli

    out = tmp_path / "runs"
    assert cli(["train", "--set", "data.name=circle", "--set", "epochs=2", "--set", "batch_size=32", "--set",
                f"out_dir={out}", "--set", "tensorboard=false", "--no-report", "--quiet"]) == 0
    run = next(out.iterdir())
    (run / "summary.json").write_text("[]")
    for argv in (["compare", str(run), str(run)], ["report", str(run)], ["train", "--resume", str(run), "--set", "epochs=3"]):
        capsys.readouterr()
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"error: {run / 'summary.json'} must hold the JSON object"), (argv, err)


# --- bad input at the CLI: one line, exit 2, nothing written --------------------------------------------------


def _cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("setting, words", [("seed=-5", "seed must be >= 0"),
                                            ("optimizer.lr=.inf", "optimizer.lr must be a finite number"),
                                            ("optimizer.weight_decay=.nan", "must be a finite number"),
                                            ("data.noise=.inf", "must be a finite number")])
def test_non_finite_and_negative_numbers_are_refused_before_a_run_exists(tmp_path, capsys, setting, words):
    code, err = _cli(capsys, "train", "--set", f"out_dir={tmp_path / 'runs'}", "--set", "data.name=circle",
                     "--set", setting)
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_python_api_refuses_an_infinite_lr_before_a_run_exists(tmp_path):
    import torch

    import trainlab as tl

    x, y = torch.randn(40, 2), torch.randint(0, 2, (40,))
    with pytest.raises(ConfigError, match="lr must be a finite number"):
        tl.fit(None, (x, y), lr=float("inf"), out_dir=str(tmp_path / "runs"), report=False, verbose=False)
    assert not (tmp_path / "runs").exists()


def test_text_files_that_are_not_utf8_are_named_with_the_fix(tmp_path, capsys):
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"a,b,label\n1,2,caf\xe9\n3,4,x\n")
    binary = tmp_path / "space.yaml"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    out = f"out_dir={tmp_path / 'runs'}"
    for argv, field in [(("train", "--set", "data.name=csv", "--set", f"data.path={latin}", "--set",
                          "data.target=label", "--set", out), "data.path"),
                        (("search", "--space", str(binary), "--set", out), "search space file"),
                        (("train", "--config", str(binary)), "--config")]:
        code, err = _cli(capsys, *argv)
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"{field} must be a UTF-8 text file" in err and "iconv" in err
    assert not (tmp_path / "runs").exists()


def test_search_name_cannot_leave_out_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "search", "--space", str(Path(__file__).parent.parent / "examples" / "space.yaml"),
                     "--name", "a/../../../escaped", "--set", f"out_dir={tmp_path / 'runs'}")
    assert code == 2 and "--name must be letters, digits" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_turns_a_read_only_disk_into_one_line(tmp_path, capsys, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, err = _cli(capsys, "train", "--set", f"out_dir={tmp_path / 'ro'}", "--set", "data.name=circle")
    assert code == 2 and len(err.splitlines()) == 1
    assert "must be writable" in err and "read-only file system" in err and str(tmp_path / "ro") in err


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    # out_dir=notes.txt, or under it: was FileExistsError / NotADirectoryError with a traceback, exit 1
    (tmp_path / "notes.txt").write_text("keep me")
    for where, words in (("notes.txt", "must be a folder. Got a file of that name already there (errno EEXIST)"),
                         ("notes.txt/runs", "must be under a folder. Got a file where a folder of its path should be")):
        code, err = _cli(capsys, "train", "--set", f"out_dir={tmp_path / where}", "--set", "data.name=circle")
        assert code == 2 and len(err.splitlines()) == 1 and words in err and str(tmp_path / where) in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_predict_csv_not_utf8_is_one_line(tmp_path):
    from trainlab.train import inference

    bad = tmp_path / "x.csv"
    bad.write_bytes(b"a,b\n1,\xe92\n")
    with pytest.raises(DataError, match="predict's CSV must be a UTF-8 text file"):
        inference._read_rows(bad, ["a", "b"])


def test_parse_yaml_refuses_a_key_named_twice_in_any_mapping_and_keeps_merge_keys():
    with pytest.raises(files.DuplicateKeyError, match=r"^'lr' twice \(lines 3 and 4\)$") as info:
        files.parse_yaml("epochs: 1\noptimizer:\n  lr: 0.1\n  lr: 0.2\n")
    assert (info.value.key, info.value.first_line, info.value.line) == ("lr", 3, 4)
    # a merge key (<<) brings in keys that the mapping may then set again: that is YAML's override, not a repeat
    assert files.parse_yaml("a: &d {x: 1, y: 2}\nb:\n  <<: *d\n  x: 3\n") == {"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 2}}
    assert files.parse_yaml("[{x: 1}, {x: 2}]") == [{"x": 1}, {"x": 2}]  # the same key in two mappings is fine
