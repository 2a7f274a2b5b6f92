"""vendor.aws_polly: each query is a JSON speech request, synthesized by Amazon Polly (boto3).

There is no batch mode: build and exec say so and exit 127 (docs/runtimes.md).
"""
import sys

from ... import BatchContext, Language, Plan


def no_batch(ctx: BatchContext) -> Plan:
    return Plan(exit_code=127, message="vendor.aws_polly has no batch mode: send speech requests as queries")


LANGUAGE = Language(
    name="vendor.aws_polly", kernelspec="vendor.aws_polly", default_runtime=sys.executable,
    log_prefix="vendor.aws_polly-kernel", build=no_batch, exec=no_batch,
    install_hint="pip install boto3",
)
