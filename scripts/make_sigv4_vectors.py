#!/usr/bin/env python3
"""Prints SigV4 signatures made by botocore for the requests Tests/TesseraServerTests/BlobTests.swift
signs with Tessera's own SigV4 (pip install botocore). The test holds these values; rerun to check them."""
import datetime
from unittest import mock
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
when = datetime.datetime(2026, 11, 30, 12, 34, 56)

with mock.patch("botocore.auth.get_current_datetime", lambda: when):
    for method, url, body in [("PUT", "http://127.0.0.1:9000/tessera-test/market/shards/ab%20cd", b"hello"),
                              ("GET", "http://127.0.0.1:9000/tessera-test/market/bundles/x", b"")]:
        r = AWSRequest(method=method, url=url, data=body)
        import hashlib
        r.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(r)
        print(method, url, r.headers["X-Amz-Date"], r.headers["Authorization"])
    r = AWSRequest(method="GET", url="http://127.0.0.1:9000/tessera-test/market/shards/abc")
    S3SigV4QueryAuth(creds, "s3", "eu-west-1", expires=600).add_auth(r)
    print("presigned", r.url)
