from django.db import models


class EventFoldCheckpoint(models.Model):
    """A process's event-log fold for /metrics as of ``watermark``, saved
    so that another process's first scrape continues from it instead of
    folding the whole log (``ops.fold_checkpoint``). Derived data: deleting
    every row only makes the next first scrape fold from the beginning."""

    key = models.CharField(
        max_length=64, primary_key=True, help_text="What the fold counts (a digest)."
    )
    watermark = models.BigIntegerField(help_text="The newest event id folded.")
    state = models.JSONField(help_text="Counters, histograms and gaps.")
    saved_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"fold {self.key[:12]} at event {self.watermark}"
