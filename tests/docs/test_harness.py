"""The tutorial runner itself, on a small page of commands that exist today."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.test_tutorial import run_all
from tests.docs.tutorial import Step, missing_command, parse_steps

PAGE = """# A page

## One

```bash
mkdir sub
cd sub
```

```yaml
not: run
```

## Two

<!-- tutorial: skip -->
```bash
exit 3
```

```bash
lakehouse version   # the CLI of this checkout
pwd
```
<!-- expect: lakehouse 0.1.0 -->
<!-- expect: /work/sub -->
"""


def test_parse_steps_keeps_order_titles_expects_and_skips() -> None:
    steps = parse_steps(PAGE)
    assert [(s.number, s.title, s.expects) for s in steps] == [
        (1, "One", []),
        (2, "Two", ["lakehouse 0.1.0", "/work/sub"]),
    ]
    assert steps[0].script == "mkdir sub\ncd sub\n"


def test_run_all_carries_the_directory_and_checks_output(tmp_path: Path) -> None:
    assert len(run_all(parse_steps(PAGE), tmp_path)) == 2


def test_a_failing_step_fails_with_its_output(tmp_path: Path) -> None:
    steps = [Step(1, "boom", "echo before\nfalse\necho after\n")]
    with pytest.raises(pytest.fail.Exception, match=r"step 1 \(boom\) exited 1:"):
        run_all(steps, tmp_path)


def test_a_missing_expectation_fails(tmp_path: Path) -> None:
    steps = [Step(1, "quiet", "lakehouse version\n", ["no such words"])]
    with pytest.raises(pytest.fail.Exception, match=r"output lacks \['no such words'\]"):
        run_all(steps, tmp_path)


def test_a_command_the_cli_lacks_is_unavailable(tmp_path: Path) -> None:
    assert missing_command(Step(1, "t", "lakehouse tables\nlakehouse catalog show\n")) is None
    assert missing_command(Step(1, "t", "lakehouse frobnicate x\n")) == "lakehouse frobnicate"
    assert missing_command(Step(1, "t", "lakehouse catalog frob\n")) == "lakehouse catalog 'frob'"
    with pytest.raises(pytest.fail.Exception, match=r"step 1 \(t\): `lakehouse frobnicate`"):
        run_all([Step(1, "t", "lakehouse frobnicate\n")], tmp_path)
