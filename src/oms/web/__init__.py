"""The operations dashboard: server-rendered pages on the same app as the API (mounted by web.mount)."""
