"""The catalogue: products with their back-order policies, customers and their tiers, stock counts,
and the settings (the allocation rule, the default policy)."""
