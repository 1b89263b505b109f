"""The launch form: one form for the HTML page and the JSON API.

Contract (``WorkspaceLaunchForm(data=None, *, user)``):

- ``data``: a ``QueryDict`` (HTML post) or a plain ``dict`` (decoded JSON; it
  goes through ``launch_data_from_json``). Field names and types:
  ``project`` (project UUID), ``name`` (DNS label, at most 63), ``ide_kind``
  (``jupyterlab`` | ``code-server`` | ``custom``), ``proxy_path`` (custom
  only, starts with ``/``), ``image`` (one of the project's allowlist),
  ``root_shell`` (checkbox / bool), ``queue`` (queue *name*), ``resource_class``
  (class id), ``gpu_count`` (int >= 0), ``gpu_model`` (one of the plan's
  models, empty for no GPU), ``gpu_sm_percentage`` (1-100), ``cpu_limit`` and
  ``memory_limit`` (quantities, empty = the plan's defaults), and the mounts.
- Mounts: HTML repeats ``mount_volume`` (volume id) and ``mount_path`` in
  pairs (blank pairs are ignored); JSON sends ``"mounts": [{"volume": 3,
  "path": "/data"}]``. Both end as ``cleaned_data["mounts"]``, a list of
  ``(Volume, path)``; errors are reported on the field ``mounts``.
- ``is_valid()`` checks the fields and every create / launch policy rule
  (``workspaces.policy``); quotas and the per-user limit are counted at
  ``save()``, under locks.
- ``save()`` creates and starts the workspace (``workspace_create``) and
  returns its ``Worker``; on a refusal it returns None, adds the message to
  the field it concerns (or the form) and sets ``form.refusal`` to the
  ``LaunchRefused`` (``.code``: e.g. ``max_workers_per_user``,
  ``project_gpu_quota``, ``queue_deserved_gpu_limit``, ``gpu_capacity``,
  ``workspace_active``, ``name_taken``, ``image_allowlist``, ...).
"""

from __future__ import annotations

from itertools import zip_longest

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import QueryDict

from resource_classes.models import ResourceClass
from workers.models import Worker
from workers.services import LaunchRefused
from workspaces import validators
from workspaces.models import Project, SchedulingQueue, Workspace
from workspaces.policy import (
    WorkspaceRefused,
    check_create_policy,
    check_launch_policy,
    check_mounts,
    resource_ceilings,
)
from workspaces.selectors import projects_for
from workspaces.services import workspace_create
from workspaces.validators import dns_label

MAX_MOUNTS = 20
# Refusal codes from the launch policy and limits -> the field they concern.
REFUSAL_FIELDS = {
    "image_allowlist": "image",
    "root_shell": "root_shell",
    "gpu_model": "gpu_model",
    "gpu_capacity": "gpu_model",
    "queue_not_in_plan": "queue",
    "plan_window": "queue",
    "queue_deserved_gpu_limit": "queue",
    "project_gpu_quota": "gpu_count",
}


def launch_data_from_json(payload) -> QueryDict:
    """A decoded JSON body as the form's data: booleans as checkboxes,
    ``mounts`` as ``mount_volume`` / ``mount_path`` pairs."""
    data = QueryDict(mutable=True)
    if not isinstance(payload, dict):
        return data
    for key, value in payload.items():
        if key == "mounts":
            for mount in value if isinstance(value, list) else [value]:
                mount = mount if isinstance(mount, dict) else {"volume": mount}
                data.appendlist("mount_volume", str(mount.get("volume", "")))
                data.appendlist("mount_path", str(mount.get("path", "")))
        elif value is True:
            data[key] = "on"
        elif value is not None and value is not False:
            data[key] = str(value)
    return data


class MountsWidget(forms.Widget):
    """Reads the repeated ``mount_volume`` / ``mount_path`` pairs."""

    def value_from_datadict(self, data, files, name):
        volumes = data.getlist("mount_volume") if hasattr(data, "getlist") else []
        paths = data.getlist("mount_path") if hasattr(data, "getlist") else []
        pairs = zip_longest(volumes, paths, fillvalue="")
        return [(v.strip(), p) for v, p in pairs if v.strip() or p.strip()]

    def value_omitted_from_data(self, data, files, name):
        return False


class MountsField(forms.Field):
    """``[(volume id, path)]`` -> ``[(Volume, path)]`` of one project."""

    widget = MountsWidget

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)
        self.project: Project | None = None
        # While the user is still typing (htmx validation), a row with only
        # a volume or only a path is not an error yet.
        self.skip_incomplete = False

    def clean(self, value):
        pairs = value or []
        if len(pairs) > MAX_MOUNTS:
            raise ValidationError(f"At most {MAX_MOUNTS} mounts.")
        volumes = (
            {str(v.pk): v for v in self.project.volumes.all()} if self.project else {}
        )
        if self.skip_incomplete:
            pairs = [(v, p) for v, p in pairs if v and p.strip()]
        mounts = []
        for volume_id, path in pairs:
            volume = volumes.get(volume_id)
            if volume is None:
                raise ValidationError(
                    "Pick one of this project's volumes for each mount path."
                    if not volume_id
                    else "That volume is not one of this project's volumes."
                )
            if not path.strip():
                raise ValidationError(f"Give volume {volume.name} a mount path.")
            mounts.append((volume, path))
        if self.project is not None:
            try:
                check_mounts(project=self.project, mounts=mounts)
            except WorkspaceRefused as exc:
                raise ValidationError(exc.message) from exc
        return mounts


class WorkspaceLaunchForm(forms.Form):
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Pick one of your projects."},
    )
    name = forms.CharField(
        max_length=63,
        validators=[dns_label],
        help_text="Lowercase letters, digits and '-'; unique in the project.",
    )
    ide_kind = forms.ChoiceField(
        label="IDE", choices=Workspace.IdeKind.choices, initial="jupyterlab"
    )
    proxy_path = forms.CharField(
        max_length=200,
        required=False,
        help_text="Custom images: the path Open goes to, e.g. /app/.",
    )
    image = forms.ChoiceField(
        error_messages={
            "invalid_choice": "That image is not in this project's allowlist; "
            "pick one of the listed images."
        }
    )
    root_shell = forms.BooleanField(required=False)
    queue = forms.ModelChoiceField(
        label="Scheduling queue",
        queryset=SchedulingQueue.objects.none(),
        to_field_name="name",
        empty_label=None,
        error_messages={
            "invalid_choice": "That queue is not offered for this project: pick "
            "the default queue or one of its plan's queues."
        },
    )
    resource_class = forms.ModelChoiceField(
        queryset=ResourceClass.objects.enabled(), empty_label=None
    )
    gpu_count = forms.IntegerField(label="GPU count", min_value=0, initial=0)
    gpu_model = forms.ChoiceField(
        label="GPU model",
        required=False,
        error_messages={
            "invalid_choice": "That GPU model is not allowed by this project's "
            "plan; pick one of the listed models."
        },
    )
    gpu_sm_percentage = forms.IntegerField(
        label="SM percentage", min_value=1, max_value=100, initial=100
    )
    cpu_limit = forms.CharField(label="CPU", max_length=32, required=False)
    memory_limit = forms.CharField(label="Memory", max_length=32, required=False)
    mounts = MountsField(label="Storage")
    repository_url = forms.CharField(
        label="Git repository",
        max_length=500,
        required=False,
        validators=[validators.workspace_repository_url],
        help_text="https://host/path or git@host:path; cloned at start.",
    )
    repository_ref = forms.CharField(
        label="Branch, tag or commit",
        max_length=200,
        required=False,
        validators=[validators.repository_ref],
    )
    requirements_path = forms.CharField(
        max_length=200,
        required=False,
        validators=[validators.requirements_path],
        help_text="Empty = requirements.txt, pyproject.toml or environment.yml.",
    )

    # Fields whose value changes other fields' choices or limits: the page
    # redraws the whole form when one of them changes.
    REDRAW = frozenset({"project", "ide_kind", "resource_class", "gpu_count"})
    blank_mounts = 1

    def __init__(self, data=None, *, user, **kwargs):
        if data is not None and not isinstance(data, QueryDict):
            data = launch_data_from_json(data)
        super().__init__(data, **kwargs)
        self.user = user
        self.refusal: LaunchRefused | None = None
        self.fields["project"].queryset = projects_for(user=user)
        self.selected_project = self._chosen_project()
        self.plan = self.selected_project.plan if self.selected_project else None
        self.window = self.plan.window_state() if self.plan else None
        self._offer_project_choices()

    def _chosen_project(self) -> Project | None:
        """The posted project when it is one of the user's, else the
        personal project (the form's default), else the first one."""
        projects = self.fields["project"].queryset
        raw = self.data.get("project") if self.is_bound else None
        if raw:
            try:
                chosen = self.fields["project"].to_python(raw)
            except ValidationError:
                chosen = None
            if chosen is not None:
                return chosen
        personal = projects.filter(personal_owner=self.user).first()
        return personal or projects.first()

    def _offer_project_choices(self) -> None:
        project, plan = self.selected_project, self.plan
        self.initial.setdefault("project", project.pk if project else None)
        default_class = ResourceClass.objects.default()
        self.initial.setdefault("resource_class", default_class)
        images = list(project.image_allowlist or []) if project else []
        self.fields["image"].choices = [(i, i) for i in images]
        models = list(plan.allowed_gpu_models or []) if plan else []
        self.fields["gpu_model"].choices = [("", "No GPU")] + [(m, m) for m in models]
        queues = Q(is_default=True)
        if plan is not None and self.window.open:
            queues |= Q(pk__in=plan.queues.values("pk"))
        self.fields["queue"].queryset = SchedulingQueue.objects.filter(queues)
        self.initial.setdefault("queue", SchedulingQueue.default().name)
        self.fields["mounts"].project = project
        self.root_allowed = bool(project and project.root_allowed)
        self.volumes = list(project.volumes.all()) if project else []

    @property
    def window_note(self) -> str:
        """Why only the default queue is offered, when that is the case."""
        if self.plan is None:
            return "No plan is bound to this project: only the default queue."
        if not self.window.open:
            opens = self.window.opens_at
            when = f" (opens {opens:%Y-%m-%d %H:%M %Z})" if opens else ""
            return f"Plan {self.plan.name}'s window is closed{when}: default only."
        return ""

    @property
    def ceilings(self) -> dict[str, str]:
        """The CPU and memory ceilings for the chosen class and plan."""
        rc = getattr(self, "cleaned_data", {}).get("resource_class")
        rc = rc or ResourceClass.objects.default()
        if rc is None:
            return {"cpu": "", "memory": ""}
        cpu, memory = resource_ceilings(Workspace(resource_class=rc), self.plan)
        return {"cpu": cpu, "memory": memory}

    @property
    def mount_rows(self) -> list[tuple[str, str]]:
        """The mount rows to draw: what was typed, then blank rows."""
        typed = self["mounts"].value() if self.is_bound else []
        return list(typed or []) + [("", "")] * self.blank_mounts

    def clean_root_shell(self) -> bool:
        root = self.cleaned_data["root_shell"]
        if root and not self.root_allowed:
            raise ValidationError(
                "Root shell is not allowed in this project; turn it off or ask "
                "an admin to allow root containers."
            )
        return root

    def clean(self):
        data = super().clean()
        if self.errors or self.selected_project is None:
            return data
        if data["gpu_count"] and not data.get("gpu_model"):
            self.add_error("gpu_model", "Pick a GPU model for a GPU workspace.")
            return data
        workspace = self._unsaved_workspace(data)
        try:
            check_create_policy(
                workspace=workspace,
                project=data["project"],
                plan=self.plan,
                mounts=data["mounts"],
            )
            check_launch_policy(
                workspace=workspace, project=data["project"], plan=self.plan
            )
        except LaunchRefused as exc:
            self._add_refusal(exc)
        return data

    def _fields(self, data) -> dict:
        names = [n for n in self.fields if n not in ("project",)]
        return {name: data[name] for name in names}

    def _unsaved_workspace(self, data) -> Workspace:
        fields = {k: v for k, v in self._fields(data).items() if k != "mounts"}
        return Workspace(project=data["project"], owner=self.user, **fields)

    def _add_refusal(self, exc: LaunchRefused) -> None:
        field = getattr(exc, "field", None) or REFUSAL_FIELDS.get(exc.code)
        self.add_error(field if field in self.fields else None, exc.message)

    def save(self) -> Worker | None:
        """Create and start the workspace; None (and ``refusal``) if refused."""
        if not self.is_valid():
            raise ValueError("save() needs a valid form")
        data = self.cleaned_data
        try:
            return workspace_create(
                owner=self.user,
                actor=self.user,
                project=data["project"],
                **self._fields(data),
            )
        except LaunchRefused as exc:
            self.refusal = exc
            self._add_refusal(exc)
            return None
