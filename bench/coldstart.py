"""Cold-start import cost of every Lambda handler, compared with ``import boto3``.

What it measures
----------------
A Lambda cold start runs the init phase: the runtime imports the handler module,
and everything that module imports at top level (Powertools, pydantic, the shared
``orchestrator`` layer, boto3...) is paid before the first request is served.  This
script loads each ``functions/*/app.py`` the way the runtime does (from its file,
via ``importlib.util.spec_from_file_location``) in a fresh interpreter started with
``python -X importtime`` and reports:

* **import time** - the sum of the *cumulative* times of the top-level (nesting
  level 0) entries of the ``-X importtime`` report, i.e. everything imported in that
  process, interpreter start-up modules (``site``, ``encodings``...) included;
* **wall time** - the wall-clock time of the whole subprocess;
* the three heaviest top-level packages of the handler.

Two baselines are measured the same way: ``python -c pass`` (the interpreter alone)
and ``import boto3``.  Every Python Lambda that talks to AWS pays for boto3 anyway,
so the ratio *handler / boto3* tells how much the handler adds on top of that
unavoidable floor (1.0x means "no more than boto3").

Each measurement is repeated ``--repeat`` times (default 5), after one unrecorded
warm-up run that fills the bytecode cache, and the median is reported.  The
subprocesses get a fake, offline AWS environment: importing a handler must not call
AWS.  This prints a table, not a pass/fail; ``--json`` prints machine-readable
results instead.

Run it with ``make bench``, or from the repository root::

    PYTHONPATH=layers/shared/python:tools .venv/bin/python bench/coldstart.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONPATH = os.pathsep.join(str(ROOT / part) for part in ("layers/shared/python", "tools"))
LOAD_TEMPLATE = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location({name!r}, {path!r})\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = module\n"
    "spec.loader.exec_module(module)\n"
)
TOP_N = 3


@dataclass
class Sample:
    """One run of one target: its ``-X importtime`` total, wall time and top-level packages."""

    import_us: int
    wall_s: float
    top_level: dict[str, int]


@dataclass
class Result:
    """The median over the runs of one target."""

    name: str
    import_ms: float
    wall_ms: float
    heaviest: list[tuple[str, float]] = field(default_factory=list)
    ratio: float | None = None


def bench_env() -> dict[str, str]:
    """A minimal, offline environment: the project's PYTHONPATH and fake AWS credentials."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": PYTHONPATH,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


def parse_importtime(stderr: str) -> dict[str, int]:
    """Cumulative time (µs) of every nesting-level-0 import in a ``-X importtime`` report.

    Lines look like ``import time:   self [us] | cumulative | imported package``; the
    package name is indented by two more spaces per nesting level.
    """
    top: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line, or something unexpected
        package = parts[2][1:]  # one separator space, then the indentation
        if package and not package.startswith(" "):
            top[package] = top.get(package, 0) + int(parts[1])
    return top


def run_once(code: str, env: dict[str, str]) -> Sample:
    """Run ``code`` in a fresh interpreter with ``-X importtime``; fail loudly if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"exit status {proc.returncode}:\n{tail}")
    top = parse_importtime(proc.stderr)
    return Sample(import_us=sum(top.values()), wall_s=wall, top_level=top)


def measure(name: str, code: str, repeat: int, env: dict[str, str]) -> Result:
    """Median of ``repeat`` runs of ``code``, after one unrecorded warm-up run."""
    run_once(code, env)
    samples = [run_once(code, env) for _ in range(repeat)]
    packages = {pkg for s in samples for pkg in s.top_level}
    per_package = {pkg: statistics.median(s.top_level.get(pkg, 0) for s in samples) / 1000 for pkg in packages}
    heaviest = sorted(per_package.items(), key=lambda item: item[1], reverse=True)[:TOP_N]
    return Result(
        name=name,
        import_ms=statistics.median(s.import_us for s in samples) / 1000,
        wall_ms=statistics.median(s.wall_s for s in samples) * 1000,
        heaviest=heaviest,
    )


def handler_code(app: Path) -> str:
    """The ``-c`` program that loads one handler file as a module, like the Lambda runtime."""
    return LOAD_TEMPLATE.format(name=f"bench_{app.parent.name}", path=str(app))


def print_table(baselines: list[Result], handlers: list[Result], repeat: int) -> None:
    """The human-readable report."""
    width = max(len(r.name) for r in [*baselines, *handlers])
    print(f"Cold-start import cost, median of {repeat} runs (python {sys.version.split()[0]})\n")
    header = f"{'target':<{width}}  {'import ms':>9}  {'wall ms':>8}  {'x boto3':>7}  heaviest top-level imports (ms)"
    print(header)
    print("-" * len(header))
    for result in [*baselines, *handlers]:
        ratio = f"{result.ratio:.2f}" if result.ratio is not None else "-"
        heavy = ", ".join(f"{pkg} {ms:.1f}" for pkg, ms in result.heaviest)
        print(f"{result.name:<{width}}  {result.import_ms:>9.1f}  {result.wall_ms:>8.1f}  {ratio:>7}  {heavy}")
        if result is baselines[-1]:
            print("-" * len(header))
    ratios = [r.ratio for r in handlers if r.ratio is not None]
    if ratios:
        print(
            f"\n{len(ratios)} handlers, ratio to import boto3: "
            f"min {min(ratios):.2f}  median {statistics.median(ratios):.2f}  max {max(ratios):.2f}"
        )


def as_json(baselines: list[Result], handlers: list[Result], repeat: int) -> str:
    """The machine-readable report (``--json``)."""

    def one(result: Result) -> dict[str, object]:
        return {
            "name": result.name,
            "import_ms": round(result.import_ms, 3),
            "wall_ms": round(result.wall_ms, 3),
            "ratio_to_boto3": None if result.ratio is None else round(result.ratio, 3),
            "heaviest": [{"package": pkg, "cumulative_ms": round(ms, 3)} for pkg, ms in result.heaviest],
        }

    ratios = [r.ratio for r in handlers if r.ratio is not None]
    summary = (
        {"min": round(min(ratios), 3), "median": round(statistics.median(ratios), 3), "max": round(max(ratios), 3)}
        if ratios
        else None
    )
    report = {
        "python": sys.version.split()[0],
        "repeat": repeat,
        "baselines": [one(r) for r in baselines],
        "handlers": [one(r) for r in handlers],
        "ratio_summary": summary,
    }
    return json.dumps(report, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per target; the median is reported (default 5)")
    parser.add_argument("--json", action="store_true", help="print machine-readable results instead of a table")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    env = bench_env()
    baselines = [
        measure("(python -c pass)", "pass", args.repeat, env),
        measure("(import boto3)", "import boto3", args.repeat, env),
    ]
    boto3_ms = baselines[1].import_ms
    handlers: list[Result] = []
    failures: list[str] = []
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        try:
            handlers.append(measure(app.parent.name, handler_code(app), args.repeat, env))
        except RuntimeError as error:
            failures.append(app.parent.name)
            print(f"{app.parent.name}: import failed, {error}", file=sys.stderr)
    for result in [*baselines, *handlers]:
        result.ratio = result.import_ms / boto3_ms if boto3_ms else None

    if args.json:
        print(as_json(baselines, handlers, args.repeat))
    else:
        print_table(baselines, handlers, args.repeat)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
