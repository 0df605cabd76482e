from rest_framework.routers import DefaultRouter

from aktina.notifications.api import NotificationViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = router.urls
