"""Orders and the back-order queue: placing, cancelling, priorities, why a line waits, the customer's
choices, and the aged-out job."""
