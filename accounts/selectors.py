"""Reads for accounts."""

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.functions import Now

from accounts.models import ApiToken, User


def api_tokens_for(*, user: User) -> QuerySet[ApiToken]:
    """``user``'s API tokens, newest first, revoked and expired included
    (the page shows why a script stopped working), each with ``expired``."""
    expired = ExpressionWrapper(Q(expires_at__lte=Now()), output_field=BooleanField())
    return (
        ApiToken.objects.filter(user=user)
        .annotate(expired=expired)
        .order_by("-created_at", "-id")
    )
