"""The operator CLI's request signing for IAM-authorised stages."""
from ops.client import _signed_headers


def test_sigv4_signs_for_execute_api_with_the_usual_credentials():
    headers = _signed_headers("POST", "https://abc.execute-api.eu-central-1.amazonaws.com/api/requests/x/retry",
                              "eu-central-1", b"{}")

    assert "/eu-central-1/execute-api/aws4_request" in headers["Authorization"]
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "X-Amz-Date" in headers and headers["X-Amz-Security-Token"] == "testing"
