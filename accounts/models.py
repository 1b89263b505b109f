import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person. The UUID is the *User ID* admins filter workers by."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class ApiToken(models.Model):
    """A personal API token for scripts. Only a SHA-256 of the token is
    stored; the token itself is shown once, at creation. ``key_id`` is the
    token's public part (``nf_<key_id>_<secret>``), used to find the row."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} (nf_{self.key_id}_…)"

    @property
    def prefix(self) -> str:
        """What identifies the token on pages and in logs; never the secret."""
        return f"nf_{self.key_id}_…"

    def is_usable(self, now) -> bool:
        return self.revoked_at is None and self.expires_at > now
