# Toolchains exercised by the batch-mode tests (tests/test_batch*.py). gcc/g++/make, rustc/cargo,
# a JDK and node come from 20-toolchains.sh; everything else comes from Debian.
# Overlaps with 30-languages.sh are harmless: apt_install skips installed packages.
# Julia has no Debian package: its tests skip with a reason.
apt_install make golang-go lua5.4 php-cli r-base-core octave mit-scheme ghc
