"""Who may do what: API keys, dashboard users, the sign-in throttle, and their CLI."""
