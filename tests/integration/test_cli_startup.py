"""`oms` starts without loading the app: commands import what they need when they run.

Not timed (timings on a shared machine are noise); what is checked is what gets imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OMS = str(Path(sys.executable).parent / "oms")

# Heavy to import, and needed by no command before it runs. (Not pydantic: Typer 0.29 itself coerces
# option values through it; the API's models are oms.api.)
NOT_AT_START = (
    "fastapi",
    "sqlalchemy",
    "uvicorn",
    "starlette",
    "jinja2",
    "httpx",
    "alembic",
    "psycopg",
    "oms.api",
    "oms.web.render",
    "oms.worker",
    # the reports' modules that build queries (oms.reports.names, which the CLI offers, has none)
    "oms.reports.filters",
    "oms.reports.measures",
    "oms.reports.waiting",
    "oms.reports.backorders",
    "oms.reports.lead_times",
    "oms.reports.cancellations",
    "oms.reports.service_levels",
    "oms.reports.summary",
    "oms.reports.queries",
    "oms.store",
    "oms.engine",
    "oms.app",
)

GROUPS = ("db", "keys", "users", "bench")
COMMANDS = ("worker", "report", "serve", "demo", "release-due")


def run_python(code: str) -> tuple[list[str], list[str]]:
    """Run `code` in a new interpreter: the lines it printed, and the modules loaded at its end."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    return out[:-1], list(json.loads(out[-1]))


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_AT_START)]


def test_importing_the_cli_loads_none_of_the_app():
    _, modules = run_python("import oms.cli")
    assert "oms.cli" in modules
    assert heavy(modules) == []


def test_the_help_of_every_group_and_command_loads_none_of_the_app():
    code = """
import typer
from typer.testing import CliRunner
from oms.cli import app

def paths(cmd, prefix):
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():  # a group's commands
        yield from paths(sub, [*prefix, name])

runner = CliRunner()
for path in paths(typer.main.get_command(app), []):
    result = runner.invoke(app, [*path, "--help"])
    print(" ".join(path) or "oms", result.exit_code)
"""
    lines, modules = run_python(code)
    exits = dict(line.rsplit(" ", 1) for line in lines)
    assert {"oms", "keys list", "report", "worker", "users create", "bench generate", "db backup"} <= set(exits)
    assert set(exits.values()) == {"0"}, exits
    assert heavy(modules) == []


def test_oms_help_exits_0_and_lists_every_command_and_group():
    result = subprocess.run([OMS, "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in (*GROUPS, *COMMANDS):
        assert f" {name} " in result.stdout, name
