"""Which repository URLs a project's git secret may go to
(``workers.setup.repository.credentials_allowed``): the host git dials for
https, ssh:// and scp-like URLs, compared with the bound hosts exactly."""

import pytest

from workers.setup.repository import credentials_allowed, repository_host


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://github.com/team/a.git", ["github.com"]),
        ("https://GitHub.COM/team/a.git", ["github.com"]),
        ("https://github.com/team/a.git", ["GITHUB.com"]),
        ("https://github.com:443/team/a.git", ["github.com"]),
        ("https://git.example.org:8443/a.git", ["git.example.org:8443"]),
        ("https://git.example.org/a.git", ["other.example", "git.example.org"]),
        ("git@github.com:team/a.git", ["github.com"]),
        ("ssh://git@github.com/team/a.git", ["github.com"]),
        ("ssh://git@git.example.org:2222/a.git", ["git.example.org:2222"]),
        ("https://[::1]:8443/a.git", ["[0::1]:8443"]),
    ],
)
def test_it_allows_a_url_on_a_bound_host(url, hosts):
    assert credentials_allowed(url, hosts)


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://evil.example/team/a.git", ["github.com"]),
        ("https://github.com.evil.example/a.git", ["github.com"]),  # no suffixes
        ("https://evilgithub.com/a.git", ["github.com"]),
        ("https://api.github.com/a.git", ["github.com"]),  # nor subdomains
        ("https://github.com:8443/a.git", ["github.com"]),  # another port
        ("https://github.com/a.git", ["github.com:8443"]),
        ("ssh://git@github.com:2222/a.git", ["github.com"]),
        ("ssh://git@github.com/a.git", ["github.com:443"]),  # 443 is https's
        ("git@evil.example:team/a.git", ["github.com"]),
        ("https://github.com@evil.example/a.git", ["github.com"]),
        ("https://github.com?@evil.example/a.git", ["github.com"]),
        ("https://github.com\\@evil.example/a.git", ["github.com"]),
        ("https://github.com./a.git", ["github.com"]),
        ("ssh://a@b@github.com/a.git", ["github.com"]),
        ("file:///srv/git/a.git", ["github.com"]),
        ("ext::ssh github.com", ["github.com"]),
        ("https://github.com/a.git", []),
    ],
)
def test_it_refuses_any_other(url, hosts):
    assert not credentials_allowed(url, hosts)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://GitHub.com/a.git", "github.com"),
        ("ssh://git@git.example.org:2222/a.git", "git.example.org:2222"),
        ("git@git.example.org:team/a.git", "git.example.org"),
        ("http://127.0.0.1:8080/a.git", "127.0.0.1:8080"),
    ],
)
def test_the_message_names_the_host_git_dials(url, named):
    assert repository_host(url) == named
