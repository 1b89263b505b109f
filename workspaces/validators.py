import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from workers.backends.spec import url_has_credentials
from workers.setup.repository import host_and_port

# RFC 1123 label: what Kubernetes and Docker both accept as a name part.
dns_label = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use lowercase letters, digits and '-', start and end with a letter or digit, "
    "at most 63 characters.",
)

# registry/path/name[:tag][@sha256:digest], the reference grammar in short.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)


def image_reference(value: str) -> None:
    if not value or len(value) > 255 or not _IMAGE.match(value):
        raise ValidationError(
            f"{value!r} is not a container image reference, e.g. jupyter/base:4.2."
        )


def mount_path(value: str) -> None:
    parts = value.split("/")
    if not value.startswith("/") or ".." in parts or value == "/" or "\x00" in value:
        raise ValidationError(
            f"{value!r}: a mount path must be absolute, not '/', and must not contain '..'."
        )
    reserved = (
        "/proc",
        "/sys",
        "/dev",
        "/etc",
        "/bin",
        "/sbin",
        "/usr",
        "/lib",
        "/var/run",
    )
    if any(value == r or value.startswith(r + "/") for r in reserved):
        raise ValidationError(
            f"{value!r} is a system path; mount under e.g. /data or /home."
        )


# Git repositories a user may name: https://host/path and ssh (ssh://[user@]host
# /path or the scp form user@host:path). Hosts never start with '-' (an ssh
# option), and no transport other than these two is accepted: ``ext::``,
# ``file://`` and local paths run or read things on the runtime's side.
_HTTPS_REPO = re.compile(
    r"^https://[A-Za-z0-9][A-Za-z0-9.-]*"
    r"(?::[0-9]{1,5})?/[A-Za-z0-9._~/%+-]+$"
)
_SSH_REPO = re.compile(
    r"^ssh://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?"
    r"/[A-Za-z0-9._~/+-]+$"
)
_SCP_REPO = re.compile(
    r"^[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:(?!/*-)[A-Za-z0-9._~/+-]+$"
)
_FILE_REPO = re.compile(r"^file:///[A-Za-z0-9._~/+-]+$")
# Branch, tag or commit: git's ref rules narrowed to characters no shell or
# git option parser treats specially.
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]{1,200}(?<![./])$")
_REQUIREMENTS_PATH = re.compile(r"^(?!/)(?!-)[A-Za-z0-9._/-]{1,200}$")


def repository_url(value: str, *, allow_local: bool = False) -> None:
    """Accept an https:// or ssh git URL; ``allow_local`` (an admin setting,
    never a user's choice) also accepts file:///absolute/path."""
    if len(value) > 500 or any(c.isspace() or c == "\x00" for c in value):
        raise ValidationError("A repository URL has no spaces; at most 500 characters.")
    if url_has_credentials(value):
        # Never echo the value: it holds a credential.
        raise ValidationError(
            "Put no credentials in the URL; a project manager stores them as the "
            "project's git secret."
        )
    if value.startswith(("file:", "/", ".", "~")) or "::" in value:
        if allow_local and _FILE_REPO.match(value):
            return
        raise ValidationError(
            f"{value!r}: local paths, file:// and '::' transports are not allowed; "
            "use an https:// or ssh URL (git@host:path or ssh://host/path)."
        )
    if not (
        _HTTPS_REPO.match(value) or _SSH_REPO.match(value) or _SCP_REPO.match(value)
    ):
        raise ValidationError(
            f"{value!r} is not a git URL we can use: give https://host/path or an "
            "ssh URL (git@host:path or ssh://host/path)."
        )


def repository_ref(value: str) -> None:
    """A branch, tag or commit name without shell or option characters."""
    if not _REF.match(value):
        raise ValidationError(
            f"{value!r} is not a usable branch, tag or commit: use letters, "
            "digits and . _ / + -, not starting with '-', without '..'."
        )


def requirements_path(value: str) -> None:
    """A relative path inside the repository."""
    if not _REQUIREMENTS_PATH.match(value) or ".." in value.split("/"):
        raise ValidationError(
            f"{value!r}: give a path relative to the repository, e.g. "
            "requirements.txt or env/requirements-dev.txt, without '..'."
        )


def workspace_repository_url(value: str) -> None:
    """``repository_url`` with file:// only where an admin allowed local
    sources (``NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES``)."""
    from django.conf import settings

    repository_url(
        value, allow_local=settings.NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES
    )


def split_git_hosts(value: str) -> list[str]:
    """The entries of a project's git hosts field: commas or spaces apart."""
    return [entry for entry in re.split(r"[\s,]+", value.lower()) if entry]


def git_hosts(value: str) -> list[str]:
    """The hosts a project's git secret is for, normalized (lowercase); each
    is a host name or ``host:port``. ``ValidationError`` names the first
    entry that is not, and why."""
    entries = split_git_hosts(value)
    for entry in entries:
        if "://" in entry:
            problem = "give the host alone, without https:// or ssh://"
        elif "/" in entry:
            problem = "give the host alone, without a path"
        elif "@" in entry:
            problem = "give the host alone, without a user"
        elif host_and_port(entry) is None:
            problem = "this is not a host name, or host:port with a port 1-65535"
        else:
            continue
        raise ValidationError(
            f"{entry!r}: {problem} (e.g. github.com or git.example.org:8443)."
        )
    return entries
