"""config.compression: Django's gzip rules at a faster level."""

import gzip

from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from config.compression import FastGZipMiddleware, compress

PAGE = ("<tr><td>worker</td><td>ready</td></tr>" * 2000).encode()


def respond(body, accept="gzip, deflate"):
    request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING=accept)
    middleware = FastGZipMiddleware(lambda r: body)
    return middleware(request)


def test_a_page_is_gzipped_with_vary_and_its_length():
    response = respond(HttpResponse(PAGE))
    assert response["Content-Encoding"] == "gzip"
    assert response["Vary"] == "Accept-Encoding"
    assert int(response["Content-Length"]) == len(response.content) < len(PAGE) / 10
    assert gzip.decompress(response.content) == PAGE


def test_the_header_carries_a_random_name_against_breach():
    lengths = {len(compress(PAGE, max_random_bytes=100)) for _ in range(30)}
    packed = compress(PAGE, max_random_bytes=100)
    assert packed[3] & gzip.FNAME
    assert len(lengths) > 5  # the length varies, whatever the body
    assert gzip.decompress(packed) == PAGE


def test_left_alone_when_not_accepted_short_or_encoded_already():
    assert "Content-Encoding" not in respond(HttpResponse(PAGE), accept="br")
    assert respond(HttpResponse(PAGE), accept="br")["Vary"] == "Accept-Encoding"
    short = respond(HttpResponse(b"ok"))
    assert short.content == b"ok" and "Content-Encoding" not in short
    encoded = HttpResponse(b"x" * 500, headers={"Content-Encoding": "br"})
    assert respond(encoded).content == b"x" * 500


def test_a_strong_etag_becomes_weak():
    response = respond(HttpResponse(PAGE, headers={"ETag": '"abc"'}))
    assert response["ETag"] == 'W/"abc"'


def test_streaming_responses_take_djangos_path():
    response = respond(StreamingHttpResponse(iter([PAGE[:5000], PAGE[5000:]])))
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == PAGE
