from django.contrib import admin

from orders.models import Allocation, Order, OrderItem, Product, Stock, Warehouse


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "unit_price", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["sku", "name"]


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "capacity"]
    search_fields = ["code", "name"]


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["product", "warehouse", "quantity", "quantity_allocated", "available"]
    list_filter = ["warehouse"]
    search_fields = ["product__sku", "product__name", "warehouse__code"]
    list_select_related = ["product", "warehouse"]
    raw_id_fields = ["product"]

    @admin.display(description="available")
    def available(self, stock: Stock) -> int:
        return stock.quantity_available


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    raw_id_fields = ["product"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "reference", "customer", "status", "priority", "total_amount", "warehouse", "created_at",
    ]
    list_filter = ["status", "priority", "warehouse", "created_at"]
    search_fields = ["reference", "customer__username", "customer__email", "tracking_number"]
    list_select_related = ["customer", "warehouse"]
    raw_id_fields = ["customer", "approved_by"]
    readonly_fields = ["reference", "total_amount", "created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [OrderItemInline]


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "product", "quantity", "unit_price"]
    search_fields = ["order__reference", "product__sku"]
    list_select_related = ["order", "product"]
    raw_id_fields = ["order", "product"]


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ["id", "order_item", "stock", "quantity"]
    search_fields = ["order_item__order__reference", "stock__product__sku"]
    list_select_related = ["order_item", "stock"]
    raw_id_fields = ["order_item", "stock"]
