# Toolchains and third-party kernels behind the language kernelspecs (issue 4; tests/test_kernel_*.py).
# gcc/g++, rustc, a JDK and node come from 20-toolchains.sh; the rest comes from Debian and PyPI.
# Cold install measured on this machine kind (empty download cache):
#   lua5.4 php-cli mit-scheme   ~19 s |  r-cran-irkernel (+ r-base-core)  ~13 s
#   golang-go (464 MB)          ~11 s |  ghc (795 MB)                     ~11 s |  octave ~21 s
# i.e. about 75 s and 1.7 GB of disk for all of them. Julia is packaged nowhere we can reach:
# its kernel reports that and its suite skips (the only skip CI allows, tests/toolcheck.py).
# Idempotent: apt_install/pip skip what is there.
apt_install lua5.4 php-cli mit-scheme r-cran-irkernel golang-go ghc octave
python3 -c 'import bash_kernel, octave_kernel' 2>/dev/null \
    || python3 -m pip install -q --root-user-action=ignore "bash_kernel>=0.10" "octave_kernel>=1.1"
