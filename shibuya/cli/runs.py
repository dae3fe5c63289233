"""Runs: ``shibuya run``, ``stop``, ``report`` and ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shibuya import conclude
from shibuya.cli.common import Output, or_exit, session, show
from shibuya.output import Format

app = typer.Typer()


def _seconds(value: str) -> int:
    from shibuya.declare import seconds

    try:
        out = seconds(value if not value.isdigit() else int(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return int(out)


Duration = Annotated[str, typer.Option(help="90, 90s, 10m or 1h30m")]
Junit = Annotated[
    Path | None,
    typer.Option("--junit", dir_okay=False,
                 help="also write the verdicts as JUnit XML (Jenkins, GitLab): a test case per "
                 "criterion, for the run's completeness and per regression limit"),
]  # fmt: skip
Markdown = Annotated[
    Path | None,
    typer.Option("--markdown", dir_okay=False,
                 help="also write the report and verdicts as Markdown (CI step summaries)"),
]  # fmt: skip
Html = Annotated[
    Path | None,
    typer.Option("--html", dir_okay=False,
                 help="also write the report as one self-contained HTML file (charts, verdicts, "
                 "failures, engines, the comparison)"),
]  # fmt: skip
Baseline = Annotated[
    str | None,
    typer.Option("--baseline",
                 help="compare with this run: its id, or last-passed (the collection's newest "
                 "earlier run that passed)"),
]  # fmt: skip
MaxRegression = Annotated[
    list[str] | None,
    typer.Option("--max-regression",
                 help="with --baseline: fail when a measure regressed beyond this, per label, "
                 "e.g. 'p95(elapsed) 10%' (docs/criteria.md); repeatable"),
]  # fmt: skip


def _ask(fmt: Format, junit: Path | None, markdown: Path | None, html: Path | None,
         baseline: str | None, limits: list[str] | None) -> conclude.Ask:  # fmt: skip
    """What to do at the end, checked before anything runs."""
    from control.results.gates import LimitError, parse_limit

    if limits and baseline is None:
        raise typer.BadParameter("needs --baseline", param_hint="--max-regression")
    try:
        parsed = [parse_limit(text) for text in limits or []]
    except LimitError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-regression") from exc
    return conclude.Ask(fmt, junit, markdown, html, baseline, parsed)


def _properties(pairs: list[str]) -> dict[str, str]:
    """``name=value`` pairs (JMeter's ``-J``), the last of a name winning."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair[:40]!r}: name=value is needed", param_hint="-J")
        out[name] = value
    return out


@app.command("run")
def client_run(
    target: Annotated[
        str,
        typer.Argument(help="a collection (PROJECT/NAME, or NAME), or a .jmx file to run as it is"),
    ],
    data: Annotated[
        list[Path] | None,
        typer.Argument(help="with a .jmx: its data files", exists=True, dir_okay=False),
    ] = None,
    engines: Annotated[int, typer.Option(help="with a .jmx: engines", min=1)] = 1,
    threads: Annotated[int, typer.Option(help="with a .jmx: threads per engine", min=1)] = 1,
    duration: Duration = "60s",
    ramp_up: Duration = "0s",
    criteria: Annotated[
        list[str] | None,
        typer.Option(
            "--criteria",
            "-c",
            help="with a .jmx: a pass/fail criterion (docs/criteria.md); repeatable",
        ),
    ] = None,
    csv_split: Annotated[
        bool, typer.Option(help="with a .jmx: split CSV rows among engines")
    ] = False,
    project: Annotated[
        str, typer.Option(help="with a .jmx: the project of its plan and collection")
    ] = "scratch",
    group: Annotated[
        str | None,
        typer.Option(
            help="with a .jmx: the project's group, if it is created and you have several"
        ),
    ] = None,
    prop: Annotated[
        list[str] | None,
        typer.Option(
            "--property",
            "-J",
            help="a JMeter property for this run, name=value (overrides the plan's and the "
            "collection's); repeatable",
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="an environment variable of JMeter for this run, NAME=value (${__env(NAME)}); "
            "repeatable",
        ),
    ] = None,
    detach: Annotated[bool, typer.Option(help="start the run and return; engines stay")] = False,
    external: Annotated[
        bool,
        typer.Option(
            help="engines of your own feed the run (shibuya sidecar tail): it is announced, no "
            "engine is deployed or started"
        ),
    ] = False,
    output: Output = Format.table,
    junit: Junit = None,
    markdown: Markdown = None,
    html: Html = None,
    baseline: Baseline = None,
    max_regression: MaxRegression = None,
) -> None:
    """Run a collection — or a .jmx file straight away — and follow it to its end: deploys the
    engines if they are not (and purges them after), prints the report and exits with the verdict.

    From a .jmx, a plan and a collection named after the file are created in project 'scratch'
    (updated to the options next time), so its runs form a history.

    Exit code: 0 finished, every published sample counted, passed every criterion and
    regression limit; 16 + a bit per class of failure (1 latency, 2 errors, 4 throughput,
    8 invalid criterion, 16 regression); 3 failed, stopped or samples lost; 1 API error; 2
    usage error; 130 interrupted twice (the run goes on). SIGINT/SIGTERM stops the run and
    waits for its end.
    """
    from rich.console import Console

    from control.services.config import ConfigError
    from shibuya import client, oneshot

    ask = _ask(output, junit, markdown, html, baseline, max_regression)
    console = Console(stderr=True)  # progress; the report alone on standard output
    with session() as (c, _):
        ref = target
        if target.lower().endswith(".jmx"):
            scratch = oneshot.Scratch(
                jmx=Path(target),
                data=data or [],
                engines=engines,
                threads=threads,
                duration_s=_seconds(duration),
                ramp_up_s=_seconds(ramp_up),
                criteria=criteria or [],
                csv_split=csv_split,
                project=project,
                group=group,
            )
            if not scratch.jmx.is_file():
                raise typer.BadParameter(f"{target} is not a file", param_hint="TARGET")
            try:
                ref = oneshot.prepare(c, scratch, console)
            except ConfigError as exc:
                for problem in exc.problems:
                    typer.echo(f"error: {problem}", err=True)
                raise typer.Exit(client.USAGE) from exc
        elif data:
            raise typer.BadParameter("data files go with a .jmx", param_hint="DATA")
        try:
            final = oneshot.run(c, ref, console, _properties(prop or []), detach=detach,
                                env=_properties(env or []), external=external)  # fmt: skip
        except oneshot.InterruptError as exc:
            typer.echo(f"{exc} again: leaving the run going", err=True)
            raise typer.Exit(client.INTERRUPTED) from exc
        if detach:
            typer.echo(final["id"])
            return
        code = conclude.conclude(c, final["id"], ask)
    raise typer.Exit(code)


RunRef = Annotated[
    str, typer.Argument(help="a run's id, or a collection (PROJECT/NAME): its latest run")
]


def _latest(ref: str, n: int) -> list[str]:
    """``ref`` if it is a run's id, else the ids of the newest ``n`` runs of the collection it
    names (newest last)."""
    import re

    from shibuya import client

    if re.fullmatch(r"run-[0-9a-f]{12}", ref):
        return [ref]
    with session() as (c, names):
        found = names.collection(ref)
        page = client.call(c, "GET", f"/api/collections/{found['id']}/runs", params={"limit": n})
    ids = [r["id"] for r in reversed(page["items"])]
    if len(ids) < n:
        typer.echo(f"error: {ref} has {len(ids)} runs, not {n}", err=True)
        raise typer.Exit(client.API_ERROR)
    return ids


@app.command("report")
def client_report(
    run: RunRef,
    output: Output = Format.table,
    junit: Junit = None,
    markdown: Markdown = None,
    html: Html = None,
    baseline: Baseline = None,
    max_regression: MaxRegression = None,
) -> None:
    """A run's results: per label samples, errors, rate, percentiles, codes; its verdicts; with
    --baseline, the comparison. Exits as `shibuya run` would have (0 only if it passed)."""
    ask = _ask(output, junit, markdown, html, baseline, max_regression)
    [run_id] = _latest(run, 1)
    with session() as (c, _):
        code = conclude.conclude(c, run_id, ask)
    raise typer.Exit(code)


@app.command("compare")
def client_compare(
    a: Annotated[
        str,
        typer.Argument(
            help="the baseline run's id — or a collection, to compare its last two runs"
        ),
    ],
    b: Annotated[str | None, typer.Argument(help="the other run's id")] = None,
    output: Output = Format.table,
) -> None:
    """Two runs side by side, per label: each measure from a to b with its change in percent."""
    from shibuya import tables

    first, second = _latest(a, 2) if b is None else (a, b)
    show(f"/api/runs/{first}/compare/{second}", output, lambda r: [tables.comparison(r)])


@app.command("stop")
def client_stop(
    run_id: Annotated[str, typer.Argument(help="the run")],
    reason: Annotated[str, typer.Option(help="why, for the record")] = "",
) -> None:
    """Ask the stream to stop a run (it ends aborted)."""
    from shibuya import client

    with client.connect() as c:
        or_exit(lambda: client.call(c, "POST", f"/api/runs/{run_id}/stop", json={"reason": reason}))
    typer.echo(f"stop requested for {run_id}")
