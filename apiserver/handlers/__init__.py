"""HTTP handlers of the API, one module per verb; ``dispatch`` maps a REST path to them."""
