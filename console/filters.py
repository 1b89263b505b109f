"""The console's filters. Applied by ``workers.selectors``, never in a view.

Status and "include terminal workers" interact: without an explicit status the
list shows active workers only, unless terminal workers are included. An
explicit status wins: ``?status=failed`` lists failed workers whether or not
the terminal box is ticked, because asking for a status by name is a clearer
intent than a default, and an empty page would look like "no failures".
"""

import django_filters
from django.db.models import QuerySet

from console.forms import ConsoleFilterForm
from workers import states
from workers.models import Worker


class WorkerConsoleFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=Worker.Status.choices,
        method="filter_status",
        label="Status",
        widget=django_filters.widgets.forms.CheckboxSelectMultiple,
    )
    backend = django_filters.ChoiceFilter(
        choices=Worker.Backend.choices, label="Backend", empty_label="Any backend"
    )
    project = django_filters.UUIDFilter(field_name="project_id", label="Space ID")
    user = django_filters.UUIDFilter(field_name="owner_id", label="User ID")

    class Meta:
        model = Worker
        fields = ["status", "backend", "project", "user"]
        form = ConsoleFilterForm

    def filter_status(self, queryset: QuerySet, name: str, value: list[str]):
        return queryset.filter(status__in=value) if value else queryset

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Apply the column filters; the form's paging/display options are
        the selector's business and are skipped here."""
        for name, value in self.form.cleaned_data.items():
            if name in self.filters:
                queryset = self.filters[name].filter(queryset, value)
        if not self.form.cleaned_data.get("status") and not self.include_terminal:
            queryset = queryset.filter(status__in=sorted(states.ACTIVE_STATUSES))
        return queryset

    @property
    def statuses(self) -> frozenset[str]:
        """The statuses the list can show (the summary counts these)."""
        chosen = self.form.cleaned_data.get("status")
        if chosen:
            return frozenset(chosen)
        if self.include_terminal:
            return frozenset(states.STATUSES)
        return states.ACTIVE_STATUSES

    @property
    def include_terminal(self) -> bool:
        return bool(self.form.cleaned_data.get("terminal"))

    @property
    def explicit_terminal_statuses(self) -> list[str]:
        """Terminal statuses asked for by name while the box is unticked."""
        chosen = self.form.cleaned_data.get("status") or []
        if self.include_terminal:
            return []
        return [s for s in chosen if s in states.TERMINAL_STATUSES]
