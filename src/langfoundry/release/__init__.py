"""The release gate, blind human preference and the model registry: what decides that a candidate ships."""
