"""Tornado handlers, one module per REST resource (as in Kernel Gateway's services/)."""
