"""What every app's admin shares. (This module registers no model.)"""


class ReadOnlyAdminMixin:
    """For rows only services write (logs, derived metrics, allocations): the admin may look,
    never add, change or delete. Put it before `admin.ModelAdmin` / `admin.TabularInline`."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
