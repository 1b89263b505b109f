"""One writer of a worker's status: the transition service.

``workers.services.transitions`` is the only code that may change a worker's
``status``: its conditional UPDATE writes the ``WorkerEvent``, the live
update and the bookkeeping (``stopped_at``, cleared next action) that
reconcile and the pages rely on. A second writer skips all of that (issue 8
item 4: a ready -> stopped edit in the Django admin left no event and
``stopped_at`` NULL, so reconcile never cleaned the runtime).

The rule, checked two ways:

1. Source scan (AST) of every project module outside ``tests/``,
   ``*/migrations/`` and ``bench/``. Only ``Worker`` has a ``status`` column,
   so these count as writing a worker's status wherever they appear:
   assigning an attribute named ``status`` (``x.status = ...``, augmented or
   annotated, ``setattr(x, "status", ...)``); a ``status=`` keyword, or a
   ``"status"`` key in a dict literal passed as ``defaults=`` or ``**``, in a
   call of ``update``, ``create``, ``get_or_create``, ``update_or_create`` or
   of ``Worker(...)``; ``"status"`` among the fields of ``bulk_update(...)``
   or ``save(update_fields=...)`` (a list literal, or a module-level list
   constant); raw SQL that updates ``workers_worker``'s status.
   Allowed: the transition service itself; the launch service, which creates
   a worker's row in its first status (a birth, not a change); and the demo
   and load-test seeds, which insert finished histories with their events.
   A plain ``worker.save()`` also writes every column, but cannot be told
   apart from other models' saves statically: no service calls it on a
   worker, and forms are covered by part 2.
2. Forms, which the scan cannot see: every admin registered for ``Worker``,
   and every inline editing workers, offers no lifecycle field in its form,
   no ``list_editable`` and no add/change permission.
"""

import ast
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import RequestFactory

from workers.models import Worker

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".venv", "tests", "migrations", "bench", "node_modules", "var"}
WRITER = "workers/services/transitions.py"
ALLOWED_CREATORS = {
    "workers/services/launch.py",
    "workspaces/demo.py",
    "workspaces/management/commands/seed_load.py",
}
CREATES = {"create", "get_or_create", "Worker"}  # a row's first status
CHANGES = {"update", "update_or_create"}
LIFECYCLE_FIELDS = {
    "status",
    "status_changed_at",
    "health",
    "health_checked_at",
    "health_latency_ms",
    "next_action",
    "next_action_at",
    "created_at",
    "started_at",
    "ready_at",
    "last_activity_at",
    "stopped_at",
    "error_code",
    "error_detail",
    "runtime_ref",
    "endpoint",
    "gateway_metadata",
    "launch_spec",
    "access_token",
}


def _project_modules() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
    )


def _string_lists(tree: ast.Module) -> dict[str, set[str]]:
    """Module-level ``NAME = [..strings..]`` (field lists such as
    ``HEALTH_FIELDS``), so ``bulk_update(ws, HEALTH_FIELDS)`` is checked."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(
            node.value, ast.List | ast.Tuple | ast.Set
        ):
            values = {_text(e) for e in node.value.elts}
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = values
    return found


def _text(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) else None


def _names_status(node, constants: dict[str, set[str]]) -> bool:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return any(_text(e) == "status" for e in node.elts)
    if isinstance(node, ast.Name):
        return "status" in constants.get(node.id, set())
    return False


def _dict_has_status(node) -> bool:
    return isinstance(node, ast.Dict) and any(_text(k) == "status" for k in node.keys)


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _splat_may_hold_status(keyword: ast.keyword, status_dicts: bool) -> bool:
    """``**values``: a dict built elsewhere in the module; it may hold a
    status when the module writes a ``"status"`` key in some dict literal."""
    if keyword.arg is not None:
        return False
    return _dict_has_status(keyword.value) or (
        status_dicts and not isinstance(keyword.value, ast.Dict)
    )


def _call_writes_status(call: ast.Call, constants, status_dicts) -> str | None:
    """``"creates"``, ``"changes"`` or None (no status written)."""
    name = _call_name(call)
    if name == "setattr" and len(call.args) >= 2:
        return "changes" if _text(call.args[1]) == "status" else None
    if name in ("bulk_update", "save"):
        fields = [*call.args[1:2]] if name == "bulk_update" else []
        fields += [
            k.value for k in call.keywords if k.arg in ("fields", "update_fields")
        ]
        return "changes" if any(_names_status(f, constants) for f in fields) else None
    if name in CREATES | CHANGES and any(
        k.arg == "status"
        or (k.arg == "defaults" and _dict_has_status(k.value))
        or _splat_may_hold_status(k, status_dicts)
        for k in call.keywords
    ):
        return "creates" if name in CREATES else "changes"
    return None


def _assigns_status(node) -> bool:
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    flat = []
    for target in targets:
        flat += target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
    return any(isinstance(t, ast.Attribute) and t.attr == "status" for t in flat)


def _raw_sql_writes_status(node) -> bool:
    text = _text(node)
    if not isinstance(text, str):
        return False
    sql = " ".join(text.lower().replace('"', "").split())
    return "update workers_worker set" in sql and "status" in sql


def status_writes(source: str) -> list[tuple[int, str]]:
    """``(line, "creates" | "changes")`` for each write of a worker's status
    in ``source``."""
    tree = ast.parse(source)
    constants = _string_lists(tree)
    status_dicts = any(_dict_has_status(node) for node in ast.walk(tree))
    found = set()
    for node in ast.walk(tree):
        kind = None
        if _assigns_status(node) or _raw_sql_writes_status(node):
            kind = "changes"
        elif isinstance(node, ast.Call):
            kind = _call_writes_status(node, constants, status_dicts)
        if kind:
            found.add((node.lineno, kind))
    return sorted(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "worker.status = 'stopped'",
        "w.status, w.health = 'ready', 'ok'",
        "setattr(worker, 'status', 'stopped')",
        "Worker.objects.filter(pk=1).update(status='stopped')",
        "qs.update(**{'status': 'stopped'})",
        "values = {'status': 'stopped'}\nWorker.objects.update(**values)",
        "Worker.objects.create(status='ready', name='x')",
        "Worker.objects.update_or_create(id=1, defaults={'status': 'ready'})",
        "Worker(status='ready')",
        "Worker.objects.bulk_update(ws, ['health', 'status'])",
        "FIELDS = ['health', 'status']\nWorker.objects.bulk_update(ws, FIELDS)",
        "worker.save(update_fields=['status'])",
        "cursor.execute('UPDATE workers_worker SET status = %s')",
    ],
)
def test_the_scan_catches_each_way_of_writing_a_status(snippet):
    assert status_writes(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "Worker.objects.filter(status='ready').update(health='ok')",
        "render(request, 'x.html', context, status=400)",
        "Worker.objects.bulk_update(ws, ['health'])",
        "client.containers.create(**options)",
        "if worker.status == 'ready': pass",
    ],
)
def test_the_scan_leaves_reads_alone(snippet):
    assert not status_writes(snippet)


def test_only_the_transition_service_writes_a_worker_status():
    offenders = []
    for path in _project_modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative == WRITER:
            continue
        for line, kind in status_writes(path.read_text()):
            if not (kind == "creates" and relative in ALLOWED_CREATORS):
                offenders.append(f"{relative}:{line} {kind} a worker's status")
    assert offenders == []
    assert status_writes((ROOT / WRITER).read_text()), "the writer was not found"


def _admins_editing_workers():
    for model, model_admin in admin.site._registry.items():
        if model is Worker:
            yield model_admin
        for inline in model_admin.get_inline_instances(_request()):
            if inline.model is Worker:
                yield inline


def _form(model_admin, request, change: bool):
    if isinstance(model_admin, admin.options.InlineModelAdmin):
        return model_admin.get_formset(request, None).form.base_fields
    return model_admin.get_form(request, None, change=change).base_fields


def _request():
    request = RequestFactory().get("/admin/")
    request.user = _EveryPermission()
    return request


class _EveryPermission:
    """A superuser that needs no database."""

    is_active = is_staff = is_superuser = is_authenticated = True
    pk = id = 1

    def has_perm(self, perm, obj=None):
        return True

    def has_perms(self, perms, obj=None):
        return True

    def has_module_perms(self, app_label):
        return True

    def get_username(self):
        return "root"


def test_no_admin_form_edits_a_worker_lifecycle_field():
    request = _request()
    checked = 0
    for model_admin in _admins_editing_workers():
        checked += 1
        name = type(model_admin).__name__
        assert not model_admin.has_add_permission(request), name
        assert not model_admin.has_change_permission(request), name
        assert not LIFECYCLE_FIELDS & set(getattr(model_admin, "list_editable", ()))
        for change in (False, True):
            editable = LIFECYCLE_FIELDS & set(_form(model_admin, request, change))
            assert not editable, f"{name} edits {sorted(editable)}"
    assert checked, "the Worker admin is not registered"
