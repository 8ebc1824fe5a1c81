"""Run a markdown tutorial's shell steps in order, the way a reader would.

A *step* is a fenced ```` ```bash ```` block. It runs with ``bash -e -o pipefail`` in the
directory the previous step ended in (so ``cd my_pipeline`` carries over), with a
``lakehouse`` on ``PATH`` that is this checkout's CLI (``sys.executable -m lakehouse``).
Markers, as HTML comments so the rendered page does not show them:

- ``<!-- expect: TEXT -->`` after a block: TEXT must appear in the step's output;
- ``<!-- tutorial: skip -->`` right before a block: shown to readers, not run.

A step whose ``lakehouse`` command the CLI does not offer (not in ``lakehouse --help`` or
the group's ``--help``, or the CLI answers "No such command") is *unavailable*: the caller
decides whether that skips or fails.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\S*)\s*$")
EXPECT = re.compile(r"^<!--\s*expect:\s*(.+?)\s*-->\s*$")
SKIP = re.compile(r"^<!--\s*tutorial:\s*skip\s*-->\s*$")
HEADING = re.compile(r"^#{1,6}\s+(.*)$")
COMMAND_ROW = re.compile(r"^│ ([a-z][a-z0-9_-]*)\s")
NO_SUCH_COMMAND = "No such command"
STEP_TIMEOUT_S = 900


@dataclass
class Step:
    number: int
    title: str
    script: str
    expects: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"step {self.number} ({self.title})"


def parse_steps(markdown: str) -> list[Step]:
    """The runnable ```bash blocks of ``markdown`` in order, with their expectations."""
    steps: list[Step] = []
    title, skip_next, lines = "", False, markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heading, fence = HEADING.match(line), FENCE.match(line)
        if heading:
            title = heading.group(1).strip()
        elif SKIP.match(line):
            skip_next = True
        elif EXPECT.match(line) and steps:
            steps[-1].expects.append(EXPECT.match(line).group(1))  # type: ignore[union-attr]
        elif fence and fence.group(1):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) == "bash" and not skip_next:
                body = "\n".join(lines[i + 1 : end]) + "\n"
                steps.append(Step(len(steps) + 1, title, body))
            skip_next = False
            i = end
        i += 1
    return steps


def lakehouse_commands(script: str) -> list[list[str]]:
    """The words after ``lakehouse`` on each line that starts with it (heredoc bodies and
    other programs' lines are ignored); options are dropped."""
    found = []
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped.startswith("lakehouse "):
            continue
        words = shlex.split(stripped, comments=True)[1:]
        found.append([w for w in words if not w.startswith("-")][:2])
    return found


def cli_env(bin_dir: Path) -> dict[str, str]:
    """The environment of every step: this checkout's CLI first on PATH, no LAKEHOUSE_*
    settings from the caller, a wide terminal so help and tables do not wrap."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
    )
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    return env


def install_shim(bin_dir: Path) -> Path:
    """A ``lakehouse`` executable that runs this checkout's CLI with this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "lakehouse"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lakehouse "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    return shim


@cache
def help_commands(*group: str) -> frozenset[str]:
    """Sub-command names listed by ``lakehouse [GROUP] --help``; a group that takes an
    argument of its own (``lakehouse sql "SELECT ..."``) also lists ``<argument>``."""
    env = cli_env(Path(sys.executable).parent)
    out = subprocess.run(
        [sys.executable, "-m", "lakehouse", *group, "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    ).stdout
    names: set[str] = set()
    section = ""
    for line in out.splitlines():
        if line.startswith("╭─"):
            section = line.strip("╭─ ╮").split(" ")[0]
        elif section == "Commands" and (m := COMMAND_ROW.match(line)):
            names.add(m.group(1))
        elif section == "Arguments":
            names.add("<argument>")
    return frozenset(names)


def missing_command(step: Step) -> str | None:
    """The first ``lakehouse ...`` command of the step that the CLI does not offer."""
    top = help_commands()
    for words in lakehouse_commands(step.script):
        if not words:
            continue
        if words[0] not in top:
            return f"lakehouse {words[0]}"
        # `lakehouse sql QUERY` takes a query where other groups take a subcommand
        if len(words) == 2 and words[0] in {"catalog", "table", "bundle", "samples"}:
            sub = help_commands(words[0])
            if words[1] not in sub and "<argument>" not in sub:
                return f"lakehouse {words[0]} {words[1]!r}"
    return None


@dataclass
class Outcome:
    step: Step
    returncode: int
    output: str
    cwd: Path

    @property
    def unavailable(self) -> bool:
        return self.returncode != 0 and NO_SUCH_COMMAND in self.output

    def missing_expects(self) -> list[str]:
        return [e for e in self.step.expects if e not in self.output]


def run_step(step: Step, cwd: Path, env: dict[str, str], state: Path) -> Outcome:
    """Run one step in ``cwd``; the outcome carries the directory it ended in."""
    script = f'{step.script}\npwd > "{state}"\n'
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
    )
    end = Path(state.read_text().strip()) if proc.returncode == 0 else cwd
    return Outcome(step, proc.returncode, proc.stdout + proc.stderr, end)
