"""oms: an order-management service whose heart is back-order handling."""
