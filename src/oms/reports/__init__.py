"""Reports: back orders, lead times, cancellations, fill rate, promise accuracy, suppliers; their
rollups, CSV, CLI and /metrics."""
