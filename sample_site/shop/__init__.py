"""The one app of the sample site: a small product catalogue and the teaching endpoints."""
