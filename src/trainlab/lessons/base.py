"""What every lesson shares: a registry, a context to write figures into, and the files a run leaves.

A lesson is a function ``(ctx: LessonContext) -> LessonOutput`` registered with :func:`lesson`. It trains
through the public API (``trainlab.fit`` / the engine's optimizers), measures, and returns the numbers it
measured plus a conclusion *computed from those numbers*. ``run_lesson`` writes ``lesson.md``,
``results.json`` and the figures into the output directory.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainlab.registry import Registry

LESSONS: Registry = Registry("lesson", "lesson")


@dataclass
class LessonContext:
    """Where a lesson writes, its seed, and ``quick`` (smaller sizes, for tests)."""

    out: Path
    seed: int = 0
    quick: bool = False
    # The lessons' networks have 1-64 units: a step is a few kernel launches, slower on a GPU than on the
    # CPU, and their conclusions were measured on the CPU. Their runs (and the tensors they evaluate the
    # trained models on) stay there on a GPU machine too, instead of device=auto moving half of them.
    device: str = "cpu"

    def figure_path(self, name: str) -> Path:
        return self.out / f"{name}.png"

    def runs_dir(self) -> str:
        """Where the lesson's training runs go (normal run directories, one per configuration)."""
        return str(self.out / "runs")


@dataclass
class LessonOutput:
    """What a lesson measured: ``setup`` and ``conclusion`` are markdown; ``table`` rows print as a table."""

    setup: str
    results: dict[str, Any]
    conclusion: str
    figures: list[Path] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    claim: str  # what the lesson shows, in one sentence
    run: Callable[[LessonContext], LessonOutput]


def lesson(name: str, title: str, claim: str) -> Callable[[Callable[[LessonContext], LessonOutput]], Lesson]:
    """Register a lesson function under ``name``."""

    def deco(fn: Callable[[LessonContext], LessonOutput]) -> Lesson:
        entry = Lesson(name, title, claim, fn)
        LESSONS.add(name, entry, title)
        return entry

    return deco


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def write_lesson(entry: Lesson, ctx: LessonContext, out: LessonOutput, seconds: float) -> Path:
    """``lesson.md`` (claim, setup, numbers, conclusion, figures) and ``results.json``."""
    figs = "\n\n".join(f"![{p.stem}]({p.name})" for p in out.figures)
    text = (f"# {entry.title}\n\n*{entry.claim}*\n\n## Setup\n\n{out.setup}\n\n## Measured\n\n"
            f"{markdown_table(out.table)}\n\n## Conclusion\n\n{out.conclusion}\n\n{figs}\n\n"
            f"<sub>trainlab lesson run {entry.name} --seed {ctx.seed}{' --quick' if ctx.quick else ''} · "
            f"{seconds:.1f} s</sub>\n")
    (ctx.out / "lesson.md").write_text(text)
    payload = {"lesson": entry.name, "seed": ctx.seed, "quick": ctx.quick, "seconds": seconds,
               "results": out.results, "table": out.table, "conclusion": out.conclusion,
               "figures": [p.name for p in out.figures]}
    (ctx.out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
    return ctx.out / "lesson.md"


def run_lesson(name: str, out: str | Path | None = None, seed: int = 0, quick: bool = False) -> tuple[Path, LessonOutput]:
    """Run one lesson into ``out`` (default ``lessons/<name>``); returns (lesson.md path, its output)."""
    entry: Lesson = LESSONS.get(name)
    ctx = LessonContext(Path(out or Path("lessons") / name), seed, quick)
    ctx.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = entry.run(ctx)
    return write_lesson(entry, ctx, result, time.perf_counter() - t0), result
