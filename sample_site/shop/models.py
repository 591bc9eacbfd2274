from django.db import models


class Product(models.Model):
    sku = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=40)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    stock = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.sku} {self.name}"

    def as_dict(self):
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": str(self.price),
            "stock": self.stock,
        }
