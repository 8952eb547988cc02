"""The generated bad-input corpus of the command line, every verb: wrong types and values, malformed overrides,
files that are missing, empty, binary, Latin-1 or truncated, run folders that are not runs, names that leave the
runs folder ("cli"); and every file a verb reads back from a run or search, damaged ("files").

Each case asserts the README's promise through ``harness.refused``: exit 2, one line on stderr, no traceback,
nothing new written and nothing already written lost.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Callable

from tests.reliability.harness import Case, Outcome, cli, refused
from tests.reliability.world import TINY, World, case_dir, copy_run, world

Argv = Callable[[Path, World], list]

LATIN1 = "x1,x2,label\n0.5,0.25,caf\xe9\n".encode("latin-1")


def _bytes(seed: int, n: int = 600) -> bytes:
    return random.Random(seed).randbytes(n)


def _case(category: str, name: str, argv: Argv, *, prepare: Callable[[Path, World], None] | None = None,
          quick: bool = False, contains: str | None = None, process: bool = False) -> Case:
    def run(_: Path) -> None:
        d = case_dir(f"{category}-{name}")
        w = world()
        if prepare is not None:
            prepare(d, w)
        refused(argv(d, w), d, contains=contains, process=process)

    return Case(category, name, run, quick)


def _train(*sets: str) -> Argv:
    return lambda d, w: ["train", *TINY, *sets, "--set", f"out_dir={d / 'runs'}", "--quiet", "--no-report"]


# ---- train --set: one bad value per case ---------------------------------------------------------------------

INT_KEYS = ("epochs", "batch_size", "seed", "data.n_points")
BAD_INTS = {"text": "abc", "negative": "-5", "fraction": "1.5", "inf": ".inf", "nan": ".nan", "list": "[3]",
            "mapping": "{a: 1}", "empty": ""}
FLOAT_KEYS = ("optimizer.lr", "optimizer.weight_decay", "model.dropout", "data.val_fraction", "data.noise")
BAD_FLOATS = {"text": "abc", "negative": "-1", "inf": ".inf", "minus_inf": "-.inf", "nan": ".nan",
              "overflow": "1e400", "list": "[0.1]"}
NAME_KEYS = ("optimizer.name", "model.name", "model.activation", "model.init", "loss.name", "data.name",
             "schedule.name", "monitor", "device")
BAD_NAMES = {"unknown": "nope", "list": "[adam]"}
MALFORMED = {
    "unknown_key": ["--set", "optimizer.lrr=0.1"], "unknown_section": ["--set", "nokey=1"],
    "no_key": ["--set", "=1"], "no_equals": ["--set", "epochs"], "section_as_value": ["--set", "optimizer=1"],
    "too_deep": ["--set", "optimizer.lr.x=1"], "hidden_zero": ["--set", "model.hidden=[0]"],
    "hidden_negative": ["--set", "model.hidden=[-4]"], "hidden_text": ["--set", "model.hidden=abc"],
    "hidden_fraction": ["--set", "model.hidden=[1.5]"], "augment_scalar": ["--set", "data.augment=1"],
    "name_slash": ["--name", "a/b"], "name_dotdot": ["--name", ".."], "name_traversal": ["--name", "a/../../x"],
    "name_absolute": ["--name", "/tmp/x"], "unknown_flag": ["--bogus"], "class_weights": ["--set",
                                                                                            "loss.class_weights=heavy"],
    "bool_text": ["--set", "data.normalize=maybe"], "augment_on_points": ["--set", "data.augment.flip=true"],
    "batch_over_data": ["--set", "batch_size=100000"], "features_unknown": ["--set", "data.features=[x9]"],
}


def _set_cases() -> list[Case]:
    cases = []
    for i, key in enumerate(INT_KEYS):
        for j, (label, value) in enumerate(BAD_INTS.items()):
            cases.append(_case("cli", f"train-set-{key}-{label}", _train("--set", f"{key}={value}"),
                               quick=(i + j) % 5 == 0))
    for i, key in enumerate(FLOAT_KEYS):
        for j, (label, value) in enumerate(BAD_FLOATS.items()):
            cases.append(_case("cli", f"train-set-{key}-{label}", _train("--set", f"{key}={value}"),
                               quick=(i + j) % 6 == 0))
    for key in NAME_KEYS:
        for label, value in BAD_NAMES.items():
            cases.append(_case("cli", f"train-set-{key}-{label}", _train("--set", f"{key}={value}"),
                               quick=key == "optimizer.name"))
    for j, (label, args) in enumerate(MALFORMED.items()):
        cases.append(_case("cli", f"train-{label}", _train(*args), quick=j % 4 == 0))
    return cases


# ---- files given on the command line -------------------------------------------------------------------------

# name → (bytes of the file, or None for "no such file" / "a folder")
BAD_TEXT_FILES: dict[str, bytes | None] = {
    "missing": None, "folder": None, "empty": b"", "binary": _bytes(1), "latin1": "lr: caf\xe9\n".encode("latin-1"),
    "truncated_yaml": b"optimizer: {lr: 0.1, name: [sg", "a_list": b"- 1\n- 2\n", "a_scalar": b"42\n",
}


def _file(d: Path, name: str, content: bytes | None, kind: str) -> Path:
    path = d / f"{kind}-{name}.yaml"
    if name == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    return path


def _config_file_cases() -> list[Case]:
    cases = []
    extra = {"unknown_key": b"optimzer: {lr: 0.1}\n", "bad_value": b"optimizer: {lr: -1}\n",
             "inf_value": b"optimizer: {lr: .inf}\n"}
    for j, (name, content) in enumerate({**BAD_TEXT_FILES, **extra}.items()):
        def argv(d: Path, w: World, name=name, content=content) -> list:
            return ["train", "--config", _file(d, name, content, "config"), *TINY, "--set", f"out_dir={d / 'runs'}",
                    "--quiet"]

        cases.append(_case("cli", f"train-config-{name}", argv, quick=j % 3 == 0))
    for j, (name, content) in enumerate({**BAD_TEXT_FILES, "low_above_high": b"optimizer.lr: {low: 1, high: 0.1}\n",
                                         "log_of_zero": b"optimizer.lr: {low: 0, high: 1, log: true}\n",
                                         "unknown_key": b"optimzer.lr: {low: 0.1, high: 1}\n",
                                         "no_range": b"optimizer.lr: {}\n"}.items()):
        def argv(d: Path, w: World, name=name, content=content) -> list:
            return ["search", *TINY, "--set", f"out_dir={d / 'runs'}", "--space", _file(d, name, content, "space"),
                    "--trials", "2", "--epochs", "1", "--quiet"]

        cases.append(_case("cli", f"search-space-{name}", argv, quick=j % 4 == 1))
    return cases


CSV_FILES: dict[str, bytes | None] = {
    "missing": None, "folder": None, "empty": b"", "binary": _bytes(2), "latin1": LATIN1,
    "header_only": b"x1,x2,label\n", "text_feature": b"x1,x2,label\n0.1,abc,0\n0.2,0.3,1\n" * 10,
    "no_target": b"a,b,c\n1,2,3\n4,5,6\n" * 10, "ragged": b"x1,x2,label\n1,2,0\n3,1\n4,5,6,7\n" * 10,
    "nan_feature": b"x1,x2,label\n1,nan,0\n2,3,1\n" * 10,
}


def _csv(d: Path, name: str, content: bytes | None) -> Path:
    path = d / f"{name}.csv"
    if name == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    return path


def _csv_cases() -> list[Case]:
    cases = []
    for j, (name, content) in enumerate(CSV_FILES.items()):
        def train_argv(d: Path, w: World, name=name, content=content) -> list:
            return ["train", *TINY, "--set", "data.name=csv", "--set", f"data.path={_csv(d, name, content)}",
                    "--set", "data.target=label", "--set", f"out_dir={d / 'runs'}", "--quiet"]

        cases.append(_case("cli", f"train-csv-{name}", train_argv, quick=name in ("latin1", "binary")))

        def predict_argv(d: Path, w: World, name=name, content=content) -> list:
            return ["predict", copy_run(d, "toy"), _csv(d, name, content)]

        cases.append(_case("cli", f"predict-csv-{name}", predict_argv, quick=name == "latin1"))
    images = {"not_an_image": b"hello", "truncated_png": b"\x89PNG\r\n\x1a\n" + _bytes(3, 40), "empty": b""}
    for name, content in images.items():
        def img_argv(d: Path, w: World, name=name, content=content) -> list:
            path = d / f"{name}.png"
            path.write_bytes(content)
            return ["predict", copy_run(d, "img"), path]

        cases.append(_case("cli", f"predict-image-{name}", img_argv, quick=name == "truncated_png"))
    cases.append(_case("cli", "predict-image-missing", lambda d, w: ["predict", copy_run(d, "img"), d / "no.png"]))
    cases.append(_case("cli", "predict-csv-wrong-columns",
                       lambda d, w: ["predict", copy_run(d, "toy"), _csv(d, "cols", b"a,b\n1,2\n")]))
    cases.append(_case("cli", "predict-csv-into-image-run",
                       lambda d, w: ["predict", copy_run(d, "img"), _csv(d, "pts", b"x1,x2\n1,2\n")]))
    return cases


# ---- run folders that are not runs, for every verb that takes one ----------------------------------------------

RUN_VERBS: dict[str, Callable[[Path], list]] = {
    "evaluate": lambda r: ["evaluate", r], "report": lambda r: ["report", r], "export": lambda r: ["export", r],
    "predict": lambda r: ["predict", r, "x.csv"], "fix": lambda r: ["fix", r, "--quiet"],
    "compare": lambda r: ["compare", r, "--out", "cmp"], "resume": lambda r: ["train", "--resume", r, "--quiet"],
    "lr-find": lambda r: ["lr-find", "--run", r, "--seeds", "1", "--steps", "10"],
}
NOT_RUNS: dict[str, Callable[[Path], Path]] = {
    "missing": lambda d: d / "runs" / "nope",
    "a_file": lambda d: _write(d / "file.txt", b"not a run\n"),
    "empty_folder": lambda d: _mkdir(d / "runs" / "empty"),
    "a_search": lambda d: copy_run(d, "search-s"),
}


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _not_run_cases() -> list[Case]:
    cases = []
    for i, (verb, argv_of) in enumerate(RUN_VERBS.items()):
        for j, (kind, make) in enumerate(NOT_RUNS.items()):
            cases.append(_case("cli", f"{verb}-{kind}", lambda d, w, argv_of=argv_of, make=make: argv_of(make(d)),
                               quick=(i + j) % 4 == 0))
    return cases


# ---- flags of the other verbs --------------------------------------------------------------------------------

def _search(*args: str) -> Argv:
    return lambda d, w: ["search", *TINY, "--set", f"out_dir={d / 'runs'}", "--space", w.space, "--trials", "2",
                         "--epochs", "1", "--quiet", *args]


FLAG_CASES: dict[str, Argv] = {
    "search-trials-text": _search("--trials", "abc"), "search-trials-zero": _search("--trials", "0"),
    "search-trials-negative": _search("--trials", "-3"), "search-workers-zero": _search("--workers", "0"),
    "search-epochs-zero": _search("--epochs", "0"), "search-method-unknown": _search("--method", "annealing"),
    "search-prune-unknown": _search("--prune", "always"), "search-cv-one": _search("--cv", "1"),
    "search-rounds-zero": _search("--method", "coarse-to-fine", "--rounds", "0", "--trials", "6"),
    "search-c2f-too-few-trials": _search("--method", "coarse-to-fine", "--rounds", "3"),
    "search-top-k-zero": _search("--method", "coarse-to-fine", "--top-k", "0", "--trials", "6"),
    "search-name-traversal": _search("--name", "a/../../../escaped"), "search-name-dotdot": _search("--name", ".."),
    "search-name-absolute": _search("--name", "/tmp/escaped"), "search-storage-not-url": _search("--storage", "nope"),
    "search-sqlite-two-workers": _search("--storage", "sqlite:///s.db", "--workers", "2"),
    "search-no-space": lambda d, w: ["search", *TINY, "--set", f"out_dir={d / 'runs'}"],
    "search-seed-text": _search("--seed", "abc"),
    "search-continue-other-settings": lambda d, w: ["search", *TINY, "--set", f"out_dir={copy_run(d, 'search-s').parent}",
                                                    "--space", w.space, "--trials", "2", "--epochs", "3", "--name", "s",
                                                    "--quiet"],
    "study-missing": lambda d, w: ["study", d / "runs" / "search-nope"],
    "study-a-run": lambda d, w: ["study", copy_run(d, "toy")],
    "study-top-text": lambda d, w: ["study", copy_run(d, "search-s"), "--top", "abc"],
    "cv-folds-one": lambda d, w: ["cv", *TINY, "--set", f"out_dir={d / 'runs'}", "--folds", "1", "--quiet"],
    "cv-folds-text": lambda d, w: ["cv", *TINY, "--set", f"out_dir={d / 'runs'}", "--folds", "abc"],
    "cv-folds-too-many": lambda d, w: ["cv", *TINY, "--set", f"out_dir={d / 'runs'}", "--folds", "100000"],
    "cv-name-traversal": lambda d, w: ["cv", *TINY, "--set", f"out_dir={d / 'runs'}", "--name", "../../x"],
    "cv-bad-set": lambda d, w: ["cv", *TINY, "--set", f"out_dir={d / 'runs'}", "--set", "optimizer.lr=-1"],
    "lr-find-seeds-zero": lambda d, w: ["lr-find", *TINY, "--seeds", "0"],
    "lr-find-seeds-text": lambda d, w: ["lr-find", *TINY, "--seeds", "abc"],
    "lr-find-min-negative": lambda d, w: ["lr-find", *TINY, "--min-lr", "-1"],
    "lr-find-max-text": lambda d, w: ["lr-find", *TINY, "--max-lr", "abc"],
    "lr-find-min-above-max": lambda d, w: ["lr-find", *TINY, "--min-lr", "1", "--max-lr", "0.1"],
    "lr-find-steps-zero": lambda d, w: ["lr-find", *TINY, "--steps", "0"],
    "lr-find-min-inf": lambda d, w: ["lr-find", *TINY, "--min-lr", "inf"],
    "export-format-unknown": lambda d, w: ["export", copy_run(d, "toy"), "--format", "pickle"],
    "export-out-json": lambda d, w: ["export", copy_run(d, "toy"), "--out", d / "model.json"],
    "compare-one-missing": lambda d, w: ["compare", copy_run(d, "toy"), d / "runs" / "nope", "--out", d / "cmp"],
    "lesson-unknown": lambda d, w: ["lesson", "run", "nope", "--out", d / "lesson"],
    "lesson-seed-text": lambda d, w: ["lesson", "run", "polynomial", "--seed", "abc"],
    "playground-port-text": lambda d, w: ["playground", "--port", "abc"],
    "playground-port-negative": lambda d, w: ["playground", "--port", "-1"],
    "playground-port-too-big": lambda d, w: ["playground", "--port", "99999"],
    "playground-remote-host": lambda d, w: ["playground", "--host", "0.0.0.0", "--port", "0"],
    "verb-unknown": lambda d, w: ["trian"],
    "evaluate-extra-argument": lambda d, w: ["evaluate", copy_run(d, "toy"), "extra"],
    "predict-no-inputs": lambda d, w: ["predict", copy_run(d, "toy")],
    "resume-with-recipe-change": lambda d, w: ["train", "--resume", copy_run(d, "toy"), "--set", "optimizer.lr=0.5"],
    "resume-finished-run": lambda d, w: ["train", "--resume", copy_run(d, "toy"), "--quiet"],
    "resume-epochs-inf": lambda d, w: ["train", "--resume", copy_run(d, "toy"), "--set", "epochs=.inf"],
    "train-resume-and-config": lambda d, w: ["train", "--resume", copy_run(d, "toy"), "--set", "data.name=spiral"],
}
FLAG_QUICK = {"search-trials-text", "search-name-traversal", "study-a-run", "cv-folds-one", "lr-find-min-above-max",
              "export-format-unknown", "playground-port-too-big", "verb-unknown", "resume-finished-run"}
# The same promise from a real process (the entry point, not main() in this process): a sample of the above.
PROCESS_CASES = {"process-train-set-inf": _train("--set", "optimizer.lr=.inf"),
                 "process-verb-unknown": lambda d, w: ["trian"],
                 "process-search-name-traversal": _search("--name", "a/../../../escaped"),
                 "process-predict-latin1": lambda d, w: ["predict", copy_run(d, "toy"), _csv(d, "latin1", LATIN1)]}


def _flag_cases() -> list[Case]:
    cases = [_case("cli", name, argv, quick=name in FLAG_QUICK) for name, argv in FLAG_CASES.items()]
    cases += [_case("cli", name, argv, process=True, quick=name == "process-predict-latin1")
              for name, argv in PROCESS_CASES.items()]
    return cases


# ---- files a verb reads back, damaged ("files") ---------------------------------------------------------------

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    path.write_bytes(_bytes(len(path.name), max(64, path.stat().st_size)))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _bad_middle_line(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[len(lines) // 2] = b'{"epoch": 1, "train_lo\n'
    path.write_bytes(b"".join(lines))


DAMAGES = {"truncated": _truncate, "random_bytes": _garble, "empty": _empty}
LOG_DAMAGES = {"bad_middle_line": _bad_middle_line, "random_bytes": _garble}
# verb → the run files it reads back (a damaged one must be named in one line, and nothing written)
READS = {
    "resume": ("config.yaml", "summary.json", "checkpoints/last.pt", "metrics.jsonl", "layers.jsonl",
               "activations.json"),
    "evaluate": ("config.yaml", "checkpoints/best.pt"),
    "export": ("config.yaml", "checkpoints/best.pt"),
    "predict": ("config.yaml", "checkpoints/best.pt"),
    "report": ("config.yaml", "summary.json", "metrics.jsonl", "layers.jsonl", "activations.json"),
    "compare": ("config.yaml", "summary.json", "metrics.jsonl"),
    "fix": ("config.yaml", "summary.json", "metrics.jsonl"),
    "lr-find": ("config.yaml", "checkpoints/last.pt"),
}
VERB_ARGV: dict[str, Callable[[Path, Path], list]] = {
    "resume": lambda d, r: ["train", "--resume", r, "--set", "epochs=4", "--quiet"],
    "evaluate": lambda d, r: ["evaluate", r], "export": lambda d, r: ["export", r],
    "predict": lambda d, r: ["predict", r, _csv(d, "good", b"x1,x2\n0.1,0.2\n")],
    "report": lambda d, r: ["report", r], "compare": lambda d, r: ["compare", r, r, "--out", d / "cmp"],
    "fix": lambda d, r: ["fix", r, "--quiet"],
    "lr-find": lambda d, r: ["lr-find", "--run", r, "--seeds", "1", "--steps", "10"],
}


def _damaged_file_cases() -> list[Case]:
    cases = []
    k = 0
    for verb, reads in READS.items():
        for rel in reads:
            damages = LOG_DAMAGES if rel.endswith(".jsonl") else DAMAGES
            for label, damage in damages.items():
                def prepare(d: Path, w: World, rel=rel, damage=damage) -> None:
                    damage(copy_run(d, "toy") / rel)

                def argv(d: Path, w: World, verb=verb) -> list:
                    return VERB_ARGV[verb](d, d / "runs" / "toy")

                cases.append(_case("files", f"{verb}-{rel.replace('/', '_')}-{label}", argv, prepare=prepare,
                                   quick=k % 9 == 0))
                k += 1
    for rel, damages in (("search.json", DAMAGES), ("study.journal", {**LOG_DAMAGES, "empty": _empty})):
        for label, damage in damages.items():
            def prepare(d: Path, w: World, rel=rel, damage=damage) -> None:
                damage(copy_run(d, "search-s") / rel)

            cases.append(_case("files", f"study-{rel}-{label}", lambda d, w: ["study", d / "runs" / "search-s"],
                               prepare=prepare, quick=(rel, label) == ("search.json", "truncated")))
            cases.append(_case("files", f"search-continue-{rel}-{label}",
                               lambda d, w: ["search", *TINY, "--set", f"out_dir={d / 'runs'}", "--space", w.space,
                                             "--trials", "3", "--epochs", "1", "--name", "s", "--quiet"],
                               prepare=prepare))
    return cases


def _partial_last_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data + data.splitlines(keepends=True)[-1][:25])  # a writer killed mid-append


def _tolerated(name: str, argv: Argv, check: Callable[[Path, World, Outcome], None], damage_run: str,
               rel: str) -> Case:
    """A partial last line of an append-only log is what a crash leaves: readers drop it and carry on (exit 0)."""
    def run(_: Path) -> None:
        d = case_dir(f"files-{name}")
        w = world()
        _partial_last_line(copy_run(d, damage_run) / rel)
        o = cli(argv(d, w), d)
        assert o.code == 0 and "Traceback" not in o.err, f"exit {o.code}: {o.err[-600:]!r}"
        check(d, w, o)

    return Case("files", name, run, quick=True)


def _journal_whole(d: Path, w: World, o: Outcome) -> None:
    journal = d / "runs" / "search-s" / "study.journal"
    lines = journal.read_bytes().splitlines()
    assert all(json.loads(line) is not None for line in lines), "a damaged line in the journal"
    assert "3 trials: 3 complete" in o.out, o.out[-400:]


def _metrics_whole(d: Path, w: World, o: Outcome) -> None:
    rows = [json.loads(line) for line in (d / "runs" / "toy" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4], [r.get("epoch") for r in rows]


TOLERATED = [
    _tolerated("study-journal-partial-last-line", lambda d, w: ["study", d / "runs" / "search-s"],
               lambda d, w, o: None, "search-s", "study.journal"),
    _tolerated("search-continue-journal-partial-last-line",
               lambda d, w: ["search", *TINY, "--set", f"out_dir={d / 'runs'}", "--space", w.space, "--trials", "3",
                             "--epochs", "1", "--name", "s", "--quiet"], _journal_whole, "search-s", "study.journal"),
    _tolerated("resume-metrics-partial-last-line",
               lambda d, w: ["train", "--resume", d / "runs" / "toy", "--set", "epochs=4", "--quiet", "--no-report"],
               _metrics_whole, "toy", "metrics.jsonl"),
]


def cli_cases() -> list[Case]:
    return [*_set_cases(), *_config_file_cases(), *_csv_cases(), *_not_run_cases(), *_flag_cases()]


def files_cases() -> list[Case]:
    return [*_damaged_file_cases(), *TOLERATED]


if __name__ == "__main__":  # how many of each
    print(len(cli_cases()), len(files_cases()), os.linesep.join(c.id for c in cli_cases()[:3]))
