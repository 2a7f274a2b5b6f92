# A graphics toolkit for Octave (gnuplot, no X), so tests/test_kernel_octave_quick.py can check that
# a cell creating a figure still gets its figures rendered by the octave kernelspec (~5 s, 20 MB).
apt_install gnuplot-nox
