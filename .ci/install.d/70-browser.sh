# Browser front-end tests (issue 14, tests/browser/): Debian's chromium driven by Playwright from
# PyPI (launched on /usr/bin/chromium: Playwright's own browser downloads are never used),
# JupyterLab and Notebook 7 from PyPI for the attached-Lab and built-in-app journeys,
# jupyter_console + pexpect for `jupyter console --existing` through a pty.
apt_install chromium fonts-dejavu-core
python3 -m pip install -q --root-user-action=ignore \
    "playwright>=1.40" "jupyterlab>=4.1,<5" "notebook>=7.1,<8" "jupyter_console>=6.6" "pexpect>=4.8"
