from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import TemplateView

from config import views
from workspaces.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "help/troubleshooting/",
        login_required(
            TemplateView.as_view(template_name="workspaces/troubleshooting.html")
        ),
        name="troubleshooting",
    ),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/notebook-workers/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("workspaces/", include("workspaces.urls")),
    path("account/", include("accounts.urls")),
    path("api/v1/", api.urls),
    path("", include("ops.urls")),
    path("", include("proxy.urls")),
]
