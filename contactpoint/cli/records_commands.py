"""`contactpoint records lifecycle|train-matching|data-keys|rotate-data-key|retire-data-key`: the
records service's own jobs, run on its database through its own administration functions
(`contactpoint.cli.recordsadmin`, imported when a job runs: the command line starts fast)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from contactpoint.cli.options import DataDir, EnvOf


def register(records: typer.Typer, command_env: EnvOf) -> None:
    """Add the records jobs to the `records` command group."""

    @records.command("lifecycle")
    def records_lifecycle(
        today: Annotated[
            str | None, typer.Option("--today", help="Run as of this date (YYYY-MM-DD); default: today.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Count what would be archived and purged; change nothing.")
        ] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Run the lifecycle rules once: archive at 18 (25 extended) or a year after death, purge six
        years after archiving."""
        from contactpoint.cli import recordsadmin

        env = command_env(data_dir, "records", existing=True)
        report = recordsadmin.lifecycle(env, today=today, dry_run=dry_run)
        if as_json:
            counts: dict[str, object] = {"archived": report.archived, "purged": report.purged}
            typer.echo(json.dumps({**counts, "dry_run": True} if dry_run else counts))
        elif dry_run:
            typer.echo(f"would archive {report.archived}, purge {report.purged} (dry run: nothing changed)")
        else:
            typer.echo(f"archived {report.archived}, purged {report.purged}")

    @records.command("train-matching")
    def records_train_matching(
        iterations: Annotated[int, typer.Option("--iterations", min=1, max=200)] = 20,
        sample: Annotated[
            int, typer.Option("--sample", min=100, help="Most records and pairs to learn from.")
        ] = 200_000,
        activate: Annotated[
            bool,
            typer.Option(
                "--activate", help="Use the new model for matching (check it on labelled pairs first)."
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Re-estimate matching's m/u weights (EM) and name frequencies from the registry's own records."""
        from contactpoint.cli import recordsadmin

        env = command_env(data_dir, "records", existing=True)
        report = recordsadmin.train(env, iterations=iterations, sample=sample, activate=activate)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "model_id": report.model_id,
                        "pairs": report.pairs,
                        "prior": report.prior,
                        "active": report.active,
                    }
                )
            )
        else:
            state = "in use" if report.active else "stored, not in use (--activate to use it)"
            typer.echo(f"match model {report.model_id}, learnt from {report.pairs} pairs: {state}")

    @records.command("data-keys")
    def records_data_keys(
        as_json: Annotated[bool, typer.Option("--json")] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Show the data key ring: which key seals, and how many rows each key seals."""
        from contactpoint.cli import recordsadmin

        status = recordsadmin.data_keys_status(command_env(data_dir, "records", existing=True))
        rows = {("clear" if k is None else str(k)): n for k, n in sorted(status.rows.items(), key=str)}
        if as_json:
            typer.echo(json.dumps({"sealing": status.newest, "keys": list(status.ring), "rows": rows}))
        else:
            typer.echo(f"keys {', '.join(map(str, status.ring))}; key {status.newest} seals")
            for key, n in rows.items():
                typer.echo(f"  {key}: {n} rows")

    @records.command("rotate-data-key")
    def records_rotate_data_key(
        standby: Annotated[
            bool,
            typer.Option(
                "--standby", help="Add the key for opening only, to be put to use by a later rotation."
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Add a new seal key to the data key file. Running replicas pick it up and re-seal older rows
        in the background (CONTACTPOINT_RECORDS_RESEAL_INTERVAL_SECONDS)."""
        from contactpoint.cli import recordsadmin

        env = command_env(data_dir, "records", existing=True)
        key_id = recordsadmin.rotate_data_key(env, standby=standby)
        typer.echo(json.dumps({"key": key_id, "standby": standby}) if as_json else f"data key {key_id} added")

    @records.command("retire-data-key")
    def records_retire_data_key(
        key_id: Annotated[int, typer.Argument(min=1, help="The seal key to drop.")],
        data_dir: DataDir = None,
    ) -> None:
        """Drop a seal key from the data key file once no row is sealed with it."""
        from contactpoint.cli import recordsadmin

        recordsadmin.retire_data_key(command_env(data_dir, "records", existing=True), key_id)
        typer.echo(f"data key {key_id} retired")
