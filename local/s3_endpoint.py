"""S3 on 127.0.0.1 for presigned requests: what a browser or an HTTP client does with the URLs the API hands
out. moto's in-process mock does not listen on a port, so this endpoint checks each request the way S3 does
and forwards it to moto:

- ``POST /<bucket>`` (browser upload, multipart/form-data): the SigV4 signature over the policy, the
  policy's expiry, every condition (exact fields, ``starts-with``, ``content-length-range``), and no form
  field the policy does not cover; then the object is stored and an ``Object Created`` event (the shape S3
  sends to EventBridge) goes to ``on_created``, asynchronously as S3 events are.
- ``GET /<bucket>/<key>`` (presigned GET): the SigV4 query signature and ``X-Amz-Expires``.

Errors answer in S3's XML error shape with S3's status codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from local.loopback import LoopbackServer

ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Form fields the policy need not cover (S3's rule).
_UNCOVERED = {"policy", "x-amz-signature", "file"}

Credentials = Callable[[], tuple[str, str]]  # (access key id, secret access key)
ObjectCreated = Callable[[dict[str, Any]], None]


class S3Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class S3Endpoint(LoopbackServer):
    """S3 on loopback; ``s3`` makes the moto client requests go to."""

    def __init__(
        self,
        *,
        region: str,
        account: str,
        credentials: Credentials,
        s3: Callable[[], Any],
        on_created: ObjectCreated,
        port: int = 0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(self._app, name="local-s3", port=port)
        self._region = region
        self._account = account
        self._credentials = credentials
        self._s3 = s3
        self._on_created = on_created
        self._now = now

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._respond(request)
        except S3Refusal as refusal:
            response = _error(refusal)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        raw_path = str(raw_uri).split("?", 1)[0]
        bucket, _, key = request.path.lstrip("/").partition("/")
        if request.method == "POST" and bucket and not key:
            return self._post(request, bucket)
        if request.method == "GET" and bucket and key:
            return self._get(request, bucket, key, raw_path)
        raise S3Refusal(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    def _post(self, request: Request, bucket: str) -> Response:
        form = {name.lower(): value for name, value in request.form.items()}
        upload = request.files.get("file")
        if upload is None:
            raise S3Refusal(400, "InvalidArgument", "POST requires exactly one file upload per request.")
        data = upload.read()
        for required in (
            "policy",
            "x-amz-signature",
            "x-amz-credential",
            "x-amz-algorithm",
            "x-amz-date",
            "key",
        ):
            if required not in form:
                raise S3Refusal(
                    400, "InvalidArgument", f"Bucket POST must contain a field named '{required}'."
                )
        if form["x-amz-algorithm"] != ALGORITHM:
            raise S3Refusal(400, "InvalidArgument", "Only AWS4-HMAC-SHA256 is supported.")
        secret, scope = self._secret_for(form["x-amz-credential"])
        expected = hmac.new(_signing_key(secret, scope), form["policy"].encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, form["x-amz-signature"]):
            raise S3Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        policy = json.loads(base64.b64decode(form["policy"]))
        self._check_policy(policy, {**form, "bucket": bucket}, len(data))
        key = form["key"]
        content_type = form.get("content-type", "binary/octet-stream")
        stored = self._s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        event = object_created_event(
            bucket=bucket,
            key=key,
            size=len(data),
            etag=str(stored.get("ETag", "")).strip('"'),
            region=self._region,
            account=self._account,
            source_ip=request.remote_addr or "127.0.0.1",
            at=self._now(),
        )
        threading.Thread(target=self._on_created, args=(event,), name="s3-notification", daemon=True).start()
        return Response(status=204, headers={"ETag": str(stored.get("ETag", "")), "Location": request.url})

    def _check_policy(self, policy: dict[str, Any], form: dict[str, str], size: int) -> None:
        expiration = datetime.fromisoformat(str(policy.get("expiration", "")).replace("Z", "+00:00"))
        if expiration <= self._now():
            raise S3Refusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        covered = set()
        for condition in policy.get("conditions", []):
            if isinstance(condition, dict):
                for name, value in condition.items():
                    covered.add(name.lower())
                    _require(form.get(name.lower()) == value, f'["eq", "${name}", "{value}"]')
            elif condition[0] == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if size > high:
                    raise S3Refusal(
                        400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                    )
                if size < low:
                    raise S3Refusal(
                        400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
                    )
            else:
                operator, field, value = condition
                name = str(field).lstrip("$").lower()
                covered.add(name)
                actual = form.get(name, "")
                matches = actual == value if operator == "eq" else actual.startswith(str(value))
                _require(operator in ("eq", "starts-with") and matches, json.dumps(condition))
        extra = sorted(
            name
            for name in form
            if name not in covered | _UNCOVERED | {"bucket"} and not name.startswith("x-ignore-")
        )
        if extra:
            raise S3Refusal(
                403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {extra[0]}"
            )

    def _get(self, request: Request, bucket: str, key: str, raw_path: str) -> Response:
        query = parse_qsl(request.query_string.decode(), keep_blank_values=True)
        params = dict(query)
        for required in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-Signature",
        ):
            if required not in params:
                raise S3Refusal(403, "AccessDenied", "Access Denied")  # the bucket is private
        signed_at = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=UTC)
        if self._now() > signed_at + timedelta(seconds=int(params["X-Amz-Expires"])):
            raise S3Refusal(403, "AccessDenied", "Request has expired")
        secret, scope = self._secret_for(params["X-Amz-Credential"])
        signed_headers = params.get("X-Amz-SignedHeaders", "host")
        canonical_query = "&".join(
            f"{_uri(name)}={_uri(value)}" for name, value in sorted(query) if name != "X-Amz-Signature"
        )
        headers = "".join(
            f"{name}:{(request.headers.get(name) or '').strip()}\n" for name in signed_headers.split(";")
        )
        canonical = "\n".join(["GET", raw_path, canonical_query, headers, signed_headers, "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join(
            [ALGORITHM, params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        expected = hmac.new(_signing_key(secret, scope), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            raise S3Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            stored = self._s3().get_object(Bucket=bucket, Key=key)
        except Exception as error:
            if getattr(error, "response", {}).get("Error", {}).get("Code") == "NoSuchKey":
                raise S3Refusal(404, "NoSuchKey", "The specified key does not exist.") from None
            raise
        return Response(stored["Body"].read(), status=200, content_type=stored.get("ContentType"))

    def _secret_for(self, credential: str) -> tuple[str, str]:
        """The secret key of the credential's access key, and the credential's scope."""
        access_key, _, scope = credential.partition("/")
        known_access_key, secret = self._credentials()
        if access_key != known_access_key:
            raise S3Refusal(
                403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
            )
        parts = scope.split("/")
        if len(parts) != 4 or parts[1] != self._region or parts[2:] != ["s3", "aws4_request"]:
            raise S3Refusal(400, "AuthorizationQueryParametersError", f"Invalid credential scope {scope!r}.")
        return secret, scope


def object_created_event(
    *, bucket: str, key: str, size: int, etag: str, region: str, account: str, source_ip: str, at: datetime
) -> dict[str, Any]:
    """The ``Object Created`` event S3 sends to EventBridge for a POST upload, as a rule's target gets it."""
    request_id = uuid.uuid4().hex[:16].upper()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            # Keys arrive URL-encoded, spaces as '+', as in S3's events.
            "object": {
                "key": quote(key, safe="/").replace("%20", "+"),
                "size": size,
                "etag": etag,
                "sequencer": f"{int(at.timestamp() * 1e6):016X}",
            },
            "request-id": request_id,
            "requester": account,
            "source-ip-address": source_ip,
            "reason": "PostObject",
        },
    }


def _signing_key(secret: str, scope: str) -> bytes:
    date, region, service, terminal = scope.split("/")
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _uri(value: str) -> str:
    return quote(value, safe="-_.~")


def _require(condition: bool, description: str) -> None:
    if not condition:
        raise S3Refusal(
            403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {description}"
        )


def _error(refusal: S3Refusal) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(refusal.code)}</Code><Message>{escape(refusal.message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return Response(body, status=refusal.status, content_type="application/xml")
