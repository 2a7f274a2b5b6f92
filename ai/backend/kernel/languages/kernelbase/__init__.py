"""Shared bases for our own Jupyter kernels.

`compiled.CompiledKernel` compiles and runs each cell (c, cpp, golang, rust, java);
`repl.ReplKernel` drives a long-running interpreter through a pty (lua, scheme, haskell, php,
nodejs, julia). Both are plain `ipykernel.kernelbase.Kernel` subclasses, so any Jupyter front-end
can use them.
"""
