"""Reports: back orders, lead times, cancellations, fill rate, promise accuracy, suppliers; their
rollups, CSV, CLI and /metrics.

Every figure is grouped and summed in the database. Figures that would otherwise recount every line
(waiting lines by age, channel and tier; fill rate; units that waited) read small rollup tables that
database triggers keep exact in every writer's transaction (migrations 0009 and 0010, `rollups`).
Reports never fold them: they write nothing and run in read-only transactions, on a replica too.

Where things are:

- `names`: the reports' names, groupings and default limit (no SQLAlchemy: the CLI offers them);
- `filters`: a report's period and channel (`Filters`, `filters_from`), and whether a period is
  whole days or hours, so that the rollups answer it;
- `measures`: the shared SQL helpers, age buckets, percentiles and line facts;
- `waiting`: the lines waiting now per age bucket (back orders, the summary and /metrics share it);
- one module per report: `backorders`, `lead_times`, `cancellations`, `service_levels` (fill rate,
  promise accuracy, suppliers on time) and `summary` (with the /metrics figures);
- `queries`: `run`, any report by name, and `tune`, the read transaction's settings;
- `tables`: reports as rows, for CSV and the CLI;
- `rollups`: the rollup tables' folding and recount; `api`, `pages`, `cli`, `metrics`: the entry
  points (routes, the Reports page, `oms report`, GET /metrics).
"""
