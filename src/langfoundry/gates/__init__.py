"""Great Expectations quality gates and the tables they validate."""
