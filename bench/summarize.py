"""Print the results files of one date as Markdown tables: `python -m bench.summarize [YYYY-MM-DD]`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from .common import RESULTS


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def main() -> None:
    day = sys.argv[1] if len(sys.argv) > 1 else datetime.now(UTC).date().isoformat()
    for path in sorted(RESULTS.glob(f"{day}-*.json")):
        data = json.loads(path.read_text())
        meta = data["meta"]
        say(f"\n### {meta['store']} ({path.name})\n")
        say(
            f"Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, "
            f"load {meta['machine']['load_avg_at_start']}"
        )
        say(f"Peak server RSS: {meta.get('memory')}\n")
        say("| operation | lines | runs | median ms | p95 ms | rate | floor ms | ratio | target | met |")
        say("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for r in data["results"]:
            floor = f"{r['floor_median_s'] * 1000:.1f}" if "floor_median_s" in r else ""
            say(
                f"| {r['operation']} | {r['lines']:,} | {r['runs']} | {r['median_s'] * 1000:.1f} | {r['p95_ms']:.1f} "
                f"| {r['rate']:,} {r['rate_unit']} | {floor} | {r.get('ratio', '')} | {r['target']} | "
                f"{'' if r['met'] is None else ('yes' if r['met'] else 'no')} |"
            )


if __name__ == "__main__":
    main()
