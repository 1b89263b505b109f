from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. “nightly training script”.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", min_value=1, initial=30
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read at call time: operators and tests change the cap.
        limit = settings.NOTEBOOK_API_TOKEN_MAX_DAYS
        field = self.fields["expires_in_days"]
        field.validators.append(MaxValueValidator(limit))
        field.widget.attrs["max"] = limit
        field.help_text = f"1 to {limit} days; a token cannot live longer."
