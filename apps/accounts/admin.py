"""Platform admins can see who is signed in where (read-only: sessions end from the user's security
page or by deleting the Django session)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import UserSession
from apps.audit.admin_mixins import AuditedAdminMixin
from apps.audit.services import record_event
from apps.core.admin import ReadOnlyAdminMixin


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "ip", "user_agent", "created_at", "last_seen_at"]
    search_fields = ["user__username", "ip"]
    list_select_related = ["user"]
    # The session key is the cookie secret: never displayed.
    fields = ["public_id", "user", "ip", "user_agent", "created_at", "last_seen_at"]
    readonly_fields = fields



# Platform admins edit users, groups and 2FA devices here too; every such write is audited like the
# tenant models (the stock ModelAdmins would bypass the audit log).
User = get_user_model()
for _model in (User, Group, TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(User)
class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    audit_action_prefix = "user"
    list_display = ["username", "email", "is_active", "is_staff", "is_superuser", "last_login", "date_joined"]

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = User.objects.get(pk=id)
            record_event(action="user.password_changed_by_admin", actor=request.user, target=user,
                         changes={"password": ["(set)", "(changed)"]})
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    audit_action_prefix = "group"


@admin.register(TOTPDevice)
class AuditedTOTPDeviceAdmin(AuditedAdminMixin, TOTPDeviceAdmin):
    audit_action_prefix = "totp_device"


@admin.register(StaticDevice)
class AuditedStaticDeviceAdmin(AuditedAdminMixin, StaticDeviceAdmin):
    audit_action_prefix = "static_device"
