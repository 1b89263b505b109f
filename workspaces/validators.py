import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

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
