"""Per-kind rules of the API: defaulting, validation, update strategies, field validation."""
