"""Jupyter kernel for vendor.aws_polly: a cell is the original's JSON request
`{"text": ..., "voiceId": ..., "textType": "text"|"ssml"}`; the answer is the synthesized audio
(`python -m ...vendor.aws_polly.kernel -f CONN`).

Credentials, region and endpoint come from the environment the way boto3 reads them
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or a profile or an instance role;
AWS_REGION or AWS_DEFAULT_REGION, default ap-northeast-2 like the original; AWS_ENDPOINT_URL_POLLY
or AWS_ENDPOINT_URL). The audio is published as a display_data whose `<content-type>` item the
runner hands to the agent as `data:<content-type>;base64,...`, with an <audio> player for
notebooks. A Polly or credential error is the cell's error (stderr, exit code 1).
See docs/runtimes.md.
"""
from __future__ import annotations

import base64
import json
import os
from typing import Any

from ...kernelbase.base import LanguageKernel
from ...kernelbase.common import launch

DEFAULT_REGION = "ap-northeast-2"
DEFAULT_FORMAT = "ogg_vorbis"  # what the original asked Polly for
USAGE = 'a query is a JSON object: {"text": "Hello", "voiceId": "Joanna", "textType": "text"}'
CHUNK = 65536
# botocore takes these as set even when empty (a profile named "", a container-role URI "")
EMPTY_MEANS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN")


class RequestError(ValueError):
    """The query is not a usable speech request."""


def parse_request(code: str) -> dict[str, Any]:
    """The synthesize_speech arguments for one query (the original's field names)."""
    try:
        request = json.loads(code)
    except ValueError as e:
        raise RequestError(f"the query is not JSON ({e}); {USAGE}") from None
    if not isinstance(request, dict):
        raise RequestError(f"the query is not a JSON object; {USAGE}")
    text, voice = request.get("text"), request.get("voiceId")
    if not isinstance(text, str) or not text:
        raise RequestError(f'"text" is missing or not a string; {USAGE}')
    if not isinstance(voice, str) or not voice:
        raise RequestError(f'"voiceId" is missing or not a string; {USAGE}')
    args = {"Text": text, "VoiceId": voice, "TextType": request.get("textType") or "text",
            "OutputFormat": request.get("outputFormat") or DEFAULT_FORMAT}
    for key, name in (("engine", "Engine"), ("languageCode", "LanguageCode"), ("sampleRate", "SampleRate")):
        if request.get(key):
            args[name] = str(request[key])
    return args


class PollyKernel(LanguageKernel):
    implementation = "krunner-bridge-aws-polly"
    language_info = {"name": "json", "mimetype": "application/json", "file_extension": ".json",
                     "codemirror_mode": {"name": "javascript", "json": True}, "pygments_lexer": "json"}
    banner = "Amazon Polly: send a JSON speech request"
    keywords = ("text", "voiceId", "textType", "outputFormat", "engine", "languageCode", "ssml")
    bracket_syntax = {"line_comments": (), "block_comments": (), "quotes": '"'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None

    def polly(self) -> Any:
        """The boto3 Polly client, made on first use (boto3 takes a while to import)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            for name in EMPTY_MEANS_UNSET:
                if not os.environ.get(name, "x"):  # set but empty (a container env template): unset
                    del os.environ[name]
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
            config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60)
            self._client = boto3.session.Session(region_name=region).client("polly", config=config)
        return self._client

    def run_cell(self, code: str) -> dict[str, Any]:
        try:
            args = parse_request(code)
        except RequestError as e:
            return self.fail("RequestError", str(e))
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            return self.fail("ModuleNotFoundError", "boto3 is not installed (pip install boto3)")
        try:
            response = self.polly().synthesize_speech(**args)
            stream = response["AudioStream"]
            audio = b"".join(iter(lambda: stream.read(CHUNK), b""))
        except (BotoCoreError, ClientError) as e:
            return self.fail(type(e).__name__, str(e))
        content_type = response.get("ContentType") or "application/octet-stream"
        encoded = base64.b64encode(audio).decode("ascii")
        if not self.silent:
            self.send_response(self.iopub_socket, "display_data", {"data": {
                content_type: encoded,
                "text/html": f'<audio controls src="data:{content_type};base64,{encoded}"></audio>',
                "text/plain": f"<{content_type}: {len(audio)} bytes, voice {args['VoiceId']}>",
            }, "metadata": {}})
        return self.ok()


if __name__ == "__main__":
    launch(PollyKernel)
