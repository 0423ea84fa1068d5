"""Sign-in pages and the user's security page, under /accounts/. The enforcement middleware lets every
page in this namespace through, so each view checks what it needs itself."""

from __future__ import annotations

from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.login_verify, name="login_verify"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("security/", views.security, name="security"),
    path("security/two-factor/setup/", views.totp_setup, name="totp_setup"),
    path("security/two-factor/backup-codes/", views.backup_codes, name="backup_codes"),
    path("security/two-factor/disable/", views.totp_disable, name="totp_disable"),
    path("security/sessions/<uuid:public_id>/revoke/", views.session_revoke, name="session_revoke"),
    path("security/sessions/revoke-others/", views.sessions_revoke_others, name="sessions_revoke_others"),
]
