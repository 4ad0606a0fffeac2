"""The shop the events come from: products, prices, users and their countries.

The catalogue and the user population are built from a fixed internal seed, so
they are the same in every run (a returning user keeps their country); only the
traffic drawn from them depends on ``--seed``. Money is in integer cents.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CATALOGUE_SEED = 20201116  # the workshop's date: fixed, independent of --seed

# category -> (lowest price, highest price in EUR, product nouns)
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "Apparel": (8.0, 90.0, ("Tee", "Hoodie", "Cap", "Jacket", "Socks")),
    "Bags": (15.0, 160.0, ("Backpack", "Tote", "Duffel", "Laptop Sleeve")),
    "Drinkware": (6.0, 40.0, ("Mug", "Bottle", "Tumbler", "Coffee Beans")),
    "Office": (2.0, 30.0, ("Notebook", "Pen Set", "Sticker Pack", "Lanyard", "Book")),
    "Electronics": (25.0, 900.0, ("Earbuds", "Speaker", "Charger", "Smart Display", "Headphones")),
    "Home": (10.0, 250.0, ("Blanket", "Lamp", "Cushion")),
    "Lifestyle": (4.0, 70.0, ("Sunglasses", "Umbrella", "Keychain")),
    "Gift Cards": (25.0, 250.0, ("Gift Card",)),
}
BRANDS = ("Google", "YouTube", "Android", "Chrome", "Hyp")
VARIANTS = ("Black", "White", "Blue", "Green", "Red", "Grey")
PRODUCTS_PER_CATEGORY = 25
# Categories a fraud burst buys from (resellable, high value).
BURST_CATEGORIES = ("Electronics", "Gift Cards")

# Products that take a country's reduced VAT rate (food and books); everything else takes the standard rate.
REDUCED_RATE_NOUNS = frozenset({"Coffee Beans", "Book"})
# country -> (standard VAT rate, reduced VAT rate, base shipping in cents). A basket's tax is the sum of its
# lines at their own rates (less the coupon), so baskets mixing both rates spread tax / value between the
# two. One reduced rate per country (the one food takes; books share it here, a simplification).
COUNTRIES: dict[str, tuple[float, float, int]] = {
    "DE": (0.19, 0.07, 490),
    "FR": (0.20, 0.055, 590),
    "IT": (0.22, 0.10, 690),
    "ES": (0.21, 0.10, 690),
    "NL": (0.21, 0.09, 490),
    "AT": (0.20, 0.10, 590),
    "IE": (0.23, 0.135, 890),
    "SE": (0.25, 0.12, 990),
}
COUNTRY_WEIGHTS = (0.30, 0.20, 0.12, 0.12, 0.10, 0.06, 0.04, 0.06)
FREE_SHIPPING_CENTS = 15_000  # baskets from 150 EUR ship free
SHIPPING_PER_EXTRA_UNIT_CENTS = 60
SHIPPING_CAP_CENTS = 2_990

# coupon -> discount on the items' total
COUPONS: dict[str, float] = {"SAVE10": 0.10, "WELCOME5": 0.05, "WINTER15": 0.15}
AFFILIATIONS = ("Google Merchandise Store", "Google Store App")


@dataclass(frozen=True)
class Catalogue:
    item_id: list[str]
    item_name: list[str]
    item_brand: list[str]
    item_category: list[str]
    item_variant: list[str]
    price_cents: np.ndarray  # int64, one per product
    popularity: np.ndarray  # float64, sums to 1
    burst_products: np.ndarray  # int64 product indices a fraud burst draws from
    reduced: np.ndarray  # bool, one per product: takes the reduced VAT rate
    item_base: list[dict[str, str]]  # the static item fields, one dict per product

    @property
    def size(self) -> int:
        return len(self.item_id)


@dataclass(frozen=True)
class Users:
    n: int
    country: np.ndarray  # int8 index into COUNTRIES
    activity: np.ndarray  # float64, sums to 1: how often each user shows up
    user_id: list[str]


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    rng = np.random.default_rng(CATALOGUE_SEED)
    ids, names, brands, cats, variants, prices = [], [], [], [], [], []
    for c, (category, (low, high, nouns)) in enumerate(CATEGORIES.items()):
        for i in range(PRODUCTS_PER_CATEGORY):
            brand = BRANDS[int(rng.integers(len(BRANDS)))]
            noun = nouns[i % len(nouns)]
            if category == "Gift Cards":
                price = float((25, 50, 100, 250)[i % 4])
            else:
                price = float(np.exp(rng.uniform(np.log(low), np.log(high))))
                price = max(np.floor(price) + 0.99, 1.99) if price < high else np.floor(high) - 0.01
            ids.append(f"SKU{10000 + c * 100 + i}")
            names.append(f"{brand} {noun} {i // len(nouns) + 1}")
            brands.append(brand)
            cats.append(category)
            variants.append(VARIANTS[int(rng.integers(len(VARIANTS)))])
            prices.append(round(price * 100))
    n = len(ids)
    ranks = rng.permutation(n) + 1
    popularity = 1.0 / ranks**0.8
    popularity /= popularity.sum()
    price_cents = np.array(prices, dtype=np.int64)
    burst = np.array([i for i in range(n) if cats[i] in BURST_CATEGORIES and price_cents[i] >= 5_000], dtype=np.int64)
    reduced = np.array([name.split(" ", 1)[1].rsplit(" ", 1)[0] in REDUCED_RATE_NOUNS for name in names])
    base = [
        {"item_name": names[i], "item_id": ids[i], "item_brand": brands[i], "item_category": cats[i],
         "item_variant": variants[i]}
        for i in range(n)
    ]  # fmt: skip
    return Catalogue(ids, names, brands, cats, variants, price_cents, popularity, burst, reduced, base)


@lru_cache(maxsize=8)
def users(n: int) -> Users:
    rng = np.random.default_rng(CATALOGUE_SEED + n)
    country = rng.choice(len(COUNTRIES), size=n, p=np.array(COUNTRY_WEIGHTS) / sum(COUNTRY_WEIGHTS)).astype(np.int8)
    activity = rng.lognormal(0.0, 1.0, size=n)
    activity /= activity.sum()
    return Users(n, country, activity, [f"u{i:06d}" for i in range(n)])


VAT_RATES = np.array([v for v, _, _ in COUNTRIES.values()])  # standard rate per country
REDUCED_VAT_RATES = np.array([r for _, r, _ in COUNTRIES.values()])
BASE_SHIPPING_CENTS = np.array([s for _, _, s in COUNTRIES.values()], dtype=np.int64)
COUPON_NAMES = ("", *COUPONS)  # index 0: no coupon
COUPON_DISCOUNTS = np.array([0.0, *COUPONS.values()])
