"""See the package docstring of otgen."""
