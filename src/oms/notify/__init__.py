"""Delivering notifications: email over SMTP (or a local .eml sink), signed webhooks, customer links."""
