# Runtimes and helpers of issue 13: boto3 for vendor.aws_polly, moto's HTTP server for its tests
# (a real Polly endpoint on a free port); git for the git runtime's %show graph.
apt_install git
python3 -m pip install -q --root-user-action=ignore "boto3>=1.28" "moto[server]>=5"
