"""Adapters to the database: tables, engine and transactions, the read side."""
