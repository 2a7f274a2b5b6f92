"""Vendor runtimes of the original runner (`vendor.aws_polly`, `vendor.h2o`): one package each,
declared like any language (docs/runtimes.md)."""
