"""Fulfillment: shipments moving Pick -> Pack -> Awaiting Shipment -> Dispatched."""
