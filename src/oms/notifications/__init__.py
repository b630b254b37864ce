"""Telling people: the worker turns committed events into emails and webhooks (builder), delivers
them (outbox, email, webhooks, targets), and the customer's signed link (links, api)."""
