import pytest

from workers.sanitize import REDACTED, sanitize, sanitize_data


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET https://bob:hunter2@git.example.org/repo failed", "hunter2"),
        ("Authorization: Bearer abcdef123456789", "abcdef123456789"),
        ("headers={'authorization': 'token 0123456789abcdef'}", "0123456789abcdef"),
        ("http://10.0.0.1:8888/api/status?token=s3cr3tvalue&x=1", "s3cr3tvalue"),
        ("password=correct-horse-battery", "correct-horse-battery"),
        ('{"api_key": "AKzz-99-qq"}', "AKzz-99-qq"),
        (
            "pushed with ghp_abcdefghijklmnopqrstuvwxyz0123",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
        ),
        ("AWS AKIAABCDEFGHIJKLMNOP denied", "AKIAABCDEFGHIJKLMNOP"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlc2ln",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
    ],
)
def test_it_redacts_secrets(text, secret):
    out = sanitize(text)
    assert secret not in out
    assert REDACTED in out


def test_it_keeps_the_useful_part_of_the_message():
    out = sanitize("ImagePullBackOff: pull https://u:p@registry.example/img:1 denied")
    assert (
        out
        == f"ImagePullBackOff: pull https://{REDACTED}@registry.example/img:1 denied"
    )


def test_it_redacts_a_known_secret_value_anywhere():
    assert sanitize("started with abcd1234efgh", extra_secrets=("abcd1234efgh",)) == (
        f"started with {REDACTED}"
    )


def test_it_caps_size():
    assert len(sanitize("x" * 10_000)) < 4100


def test_it_walks_json_data_and_blanks_secret_keys():
    data = {
        "gateway": "gw-1",
        "auth_token": "abc",
        "nested": [{"url": "http://a:b@h/"}],
    }
    assert sanitize_data(data) == {
        "gateway": "gw-1",
        "auth_token": REDACTED,
        "nested": [{"url": f"http://{REDACTED}@h/"}],
    }
