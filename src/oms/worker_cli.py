"""`oms worker`: the command that runs the outbox worker (oms.worker, imported only when it runs)."""

from __future__ import annotations

from typing import Annotated

import typer


def worker_command(
    once: Annotated[bool, typer.Option("--once", help="Run the jobs, deliver what is due, then exit.")] = False,
    jobs_enabled: Annotated[bool, typer.Option("--jobs/--no-jobs", help="Run the scheduled jobs.")] = True,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Build and deliver notifications (email, webhooks), fold the report rollups, run the scheduled jobs."""
    import logging  # here, not at the top: no other command pays for them
    import signal
    import threading

    from oms.store.db import Store, database_url, make_engine, shown_url
    from oms.worker import Worker, _mail_target

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worker = Worker(Store(make_engine()))
    typer.echo(f"oms worker {worker.name} on {shown_url(database_url())} ({_mail_target()})")
    if once:
        done = worker.run_jobs() if jobs_enabled else {}
        n = worker.drain()
        done["rollup_rows_folded"] = worker.fold()
        typer.echo(f"jobs: {done}; {n} delivery attempts")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop, max_seconds=max_seconds, jobs_enabled=jobs_enabled)
