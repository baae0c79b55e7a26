"""Token-factory economics: production cost, capacity planning, break-even, forecast."""
