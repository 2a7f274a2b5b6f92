"""A quicker start and cell for the Bash kernel (the `shell` kernelspec); see kernel.py."""
