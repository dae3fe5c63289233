"""The ``shibuya`` command: one module per group of commands.

Each deployable reads its settings from environment variables with its own prefix
(``SHIBUYA_SIDECAR_``, ``SHIBUYA_WORKER_``, ``SHIBUYA_API_``); ``shibuya <component> config``
prints what it would run with. Components are imported inside their commands, so ``shibuya dev``
does not pay for Faust or FastAPI.

* :mod:`~shibuya.cli.sidecar`, :mod:`~shibuya.cli.worker`, :mod:`~shibuya.cli.api`: the three
  deployables (``shibuya sidecar|worker|api …``);
* :mod:`~shibuya.cli.plans`, :mod:`~shibuya.cli.objects`, :mod:`~shibuya.cli.engines`,
  :mod:`~shibuya.cli.runs`: a user's commands against the API, by name (``shibuya apply|validate|
  upload|list|get|delete|runs|deploy|purge|status|run|stop|report|compare``);
* :mod:`~shibuya.cli.dev`: development services and the main job (``shibuya dev …``).
"""

from __future__ import annotations

import typer

from shibuya.cli import api, dev, engines, objects, plans, runs, secrets, sidecar, stack, worker

app = typer.Typer(
    help="Shibuya distributed mode: JMeter engines publish results to Kafka, stream workers "
    "aggregate them, a stateless API controls runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.add_typer(sidecar.app, name="sidecar")
app.add_typer(worker.app, name="worker")
app.add_typer(api.app, name="api")
app.add_typer(dev.app, name="dev")
app.add_typer(secrets.app, name="secret")
for commands in (stack.app, plans.app, objects.app, engines.app, runs.app):
    app.add_typer(commands)


def main() -> None:
    app(prog_name="shibuya")
