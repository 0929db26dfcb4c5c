"""kubelite's node agent: runs the pods bound to its node through the runtime and reports their status."""
