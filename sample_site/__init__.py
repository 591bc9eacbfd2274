"""The sample Django site that every server in this repository serves, unchanged."""
