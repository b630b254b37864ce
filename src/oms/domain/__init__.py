"""The rules of the business. Imports only the standard library."""
