"""`manage.py seed_products`: the 50 products every page and benchmark reads.

The rows are computed from their number, not drawn at random, so every machine has
the same catalogue; running the command again changes nothing.
"""

from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from sample_site.shop.models import Product

PRODUCT_COUNT = 50
ADJECTIVES = ["Sturdy", "Compact", "Quiet", "Bright", "Classic", "Handy", "Light", "Solid", "Smart", "Tiny"]
NOUNS = ["Kettle", "Lamp", "Notebook", "Backpack", "Mug"]
CATEGORIES = {"Kettle": "kitchen", "Lamp": "home", "Notebook": "office", "Backpack": "travel", "Mug": "kitchen"}


def product_fields(number):
    """The fields of product `number` (1..50)."""
    noun = NOUNS[number % len(NOUNS)]
    adjective = ADJECTIVES[(number // len(NOUNS)) % len(ADJECTIVES)]
    return {
        "sku": f"SKU-{number:04d}",
        "name": f"{adjective} {noun}",
        "category": CATEGORIES[noun],
        "price": Decimal(4 + (number * 37) % 96) + Decimal("0.99"),
        "stock": (number * 13) % 40,
    }


class Command(BaseCommand):
    help = f"Create or refresh the {PRODUCT_COUNT} sample products (idempotent)."

    def handle(self, *args, **options):
        created = 0
        with transaction.atomic():
            for number in range(1, PRODUCT_COUNT + 1):
                fields = product_fields(number)
                _, was_created = Product.objects.update_or_create(sku=fields.pop("sku"), defaults=fields)
                created += was_created
        self.stdout.write(f"{PRODUCT_COUNT} products present ({created} created).")
