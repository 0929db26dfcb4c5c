"""kubelite's scheduler: binds pending pods to nodes through a filter/score plugin framework."""
