"""The `langfoundry` command and its file checker."""
