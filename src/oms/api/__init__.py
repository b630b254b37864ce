"""The REST API: translates HTTP to use cases and domain errors to problem details."""
