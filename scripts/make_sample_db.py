#!/usr/bin/env python3
"""Generate the sample sales database shipped with mcp_magic (and its demo files).

Deterministic (seeded ``random``, no clock, no network, stdlib only): running it
twice gives the same data. By default it writes ``mcp_magic/data/sample.db`` and
the small demo files under ``mcp_magic/data/files/``.

    python scripts/make_sample_db.py [--out PATH] [--files-dir DIR | --no-files] [--seed N]

Tables: regions, customers, products, orders, order_items.
Views: sales (one row per order item, with region/customer/product and amount),
monthly_revenue (revenue per month and region, completed and shipped orders).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import random
import sqlite3
from collections import defaultdict
from itertools import accumulate
from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "mcp_magic" / "data"
DEFAULT_OUT = PACKAGE_DATA / "sample.db"
DEFAULT_FILES = PACKAGE_DATA / "files"

N_CUSTOMERS = 500
N_ORDERS = 3000
FIRST_DAY = dt.date(2024, 1, 1)
LAST_DAY = dt.date(2025, 12, 31)  # "today" in the data set

SCHEMA = """
CREATE TABLE regions (
    region_id   INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    manager     TEXT NOT NULL,
    hq_city     TEXT NOT NULL
);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT,
    city        TEXT NOT NULL,
    region_id   INTEGER NOT NULL REFERENCES regions(region_id),
    segment     TEXT NOT NULL CHECK (segment IN ('Consumer', 'Small Business', 'Enterprise')),
    signup_date DATE NOT NULL
);
CREATE TABLE products (
    product_id  INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    category    TEXT NOT NULL,
    unit_price  REAL NOT NULL,
    launched    DATE NOT NULL
);
CREATE TABLE orders (
    order_id     INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(customer_id),
    order_date   DATE NOT NULL,
    shipped_date DATE,
    status       TEXT NOT NULL
                 CHECK (status IN ('pending', 'shipped', 'completed', 'cancelled', 'returned')),
    channel      TEXT NOT NULL CHECK (channel IN ('online', 'store', 'phone'))
);
CREATE TABLE order_items (
    order_item_id INTEGER PRIMARY KEY,
    order_id      INTEGER NOT NULL REFERENCES orders(order_id),
    product_id    INTEGER NOT NULL REFERENCES products(product_id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    unit_price    REAL NOT NULL,
    discount      REAL NOT NULL DEFAULT 0 CHECK (discount >= 0 AND discount < 1)
);
CREATE INDEX idx_orders_customer ON orders(customer_id);
CREATE INDEX idx_order_items_order ON order_items(order_id);

CREATE VIEW sales AS
SELECT
    oi.order_item_id,
    o.order_id,
    o.order_date,
    o.status,
    o.channel,
    r.name AS region,
    c.customer_id,
    c.name AS customer,
    c.segment,
    p.name AS product,
    p.category,
    oi.quantity,
    oi.unit_price,
    oi.discount,
    ROUND(oi.quantity * oi.unit_price * (1 - oi.discount), 2) AS amount
FROM order_items AS oi
JOIN orders AS o ON o.order_id = oi.order_id
JOIN customers AS c ON c.customer_id = o.customer_id
JOIN regions AS r ON r.region_id = c.region_id
JOIN products AS p ON p.product_id = oi.product_id;

CREATE VIEW monthly_revenue AS
SELECT
    substr(order_date, 1, 7) AS month,
    region,
    COUNT(DISTINCT order_id) AS orders,
    ROUND(SUM(amount), 2) AS revenue
FROM sales
WHERE status IN ('completed', 'shipped')
GROUP BY month, region;
"""

# name, manager, hq city, other cities, share of customers, yearly growth factor for 2025
REGIONS = [
    ("North", "Ingrid Larsen", "Minneapolis", ["Fargo", "Duluth", "Madison", "Green Bay"],
     0.22, 1.05),
    ("South", "Carlos Mendez", "Houston", ["Austin", "Atlanta", "Miami", "Nashville"], 0.24, 0.85),
    ("East", "Priya Natarajan", "Boston", ["New York", "Philadelphia", "Baltimore", "Hartford"],
     0.28, 1.10),
    ("West", "Kenji Watanabe", "Seattle", ["Portland", "San Jose", "Sacramento", "Reno"],
     0.16, 1.45),
    ("Central", "Amara Okafor", "Chicago", ["Kansas City", "Omaha", "Des Moines", "St. Louis"],
     0.10, 1.00),
]

# category -> [(product name, list price)]
PRODUCTS = {
    "Electronics": [
        ("Laptop Pro 14", 1899.0), ("Laptop Air 13", 1199.0), ("Desktop Tower X", 1499.0),
        ("Monitor 27in 4K", 429.0), ("Monitor 24in", 189.0), ("Tablet 11", 649.0),
        ("Smartphone S", 899.0), ("Smartphone Lite", 399.0), ("Wireless Earbuds", 149.0),
        ("Noise-Cancelling Headphones", 329.0), ("Webcam HD", 79.0), ("Portable SSD 1TB", 119.0),
        ("Laser Printer", 279.0),
    ],
    "Accessories": [
        ("USB-C Hub", 49.0), ("Wireless Mouse", 29.0), ("Mechanical Keyboard", 119.0),
        ("Laptop Sleeve", 35.0), ("Phone Case", 19.0), ("Charging Cable 2m", 15.0),
        ("Power Bank 20000", 59.0), ("Docking Station", 229.0), ("Monitor Arm", 99.0),
        ("Screen Protector", 12.0), ("Ergonomic Wrist Rest", 25.0), ("Bluetooth Speaker", 89.0),
    ],
    "Office Supplies": [
        ("Printer Paper A4 (5 reams)", 32.0), ("Gel Pens (12-pack)", 11.5), ("Sticky Notes", 8.0),
        ("Stapler", 14.0), ("Whiteboard Markers", 9.5), ("Spiral Notebooks (5-pack)", 16.0),
        ("Desk Organizer", 27.0), ("Label Maker", 45.0), ("Toner Cartridge", 89.0),
        ("File Folders (50)", 18.0), ("Shredder", 149.0), ("Calculator", 21.0),
    ],
    "Furniture": [
        ("Standing Desk", 599.0), ("Office Chair Ergo", 449.0), ("Office Chair Basic", 179.0),
        ("Bookshelf", 159.0), ("Filing Cabinet", 219.0), ("Conference Table", 1290.0),
        ("Desk Lamp", 49.0), ("Whiteboard 120x90", 139.0), ("Footrest", 39.0),
        ("Meeting Chair", 129.0), ("Acoustic Panel", 89.0),
    ],
    "Software": [
        ("Office Suite (1 yr)", 99.0), ("Antivirus (1 yr)", 49.0), ("Photo Editor", 149.0),
        ("Accounting Pro", 299.0), ("Cloud Backup 1TB (1 yr)", 79.0), ("Project Planner", 119.0),
        ("PDF Toolkit", 69.0), ("Video Editor", 199.0), ("Password Manager (1 yr)", 36.0),
        ("Developer IDE (1 yr)", 249.0), ("Design Suite (1 yr)", 599.0), ("VPN (1 yr)", 59.0),
    ],
}
# 2025 list-price change per category (prices charged in orders follow it)
PRICE_CHANGE_2025 = {"Electronics": 0.97, "Accessories": 1.04, "Office Supplies": 1.06,
                     "Furniture": 1.05, "Software": 1.08}

FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jonas", "Kira",
    "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
    "Wei", "Xavier", "Yara", "Zoe", "Aiko", "Bruno", "Carmen", "Dmitri", "Esther", "Felix",
]
LAST_NAMES = [
    "Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Johnson",
    "Khan", "Lopez", "Moreau", "Nguyen", "Okoro", "Patel", "Quiroga", "Rossi", "Schmidt", "Tanaka",
    "Ueda", "Varga", "Wilson", "Xu", "Young", "Zimmer", "Novak", "Silva", "Kowalski", "Murphy",
]
COMPANY_WORDS = [
    "Acme", "Blue", "Cedar", "Delta", "Everest", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Keystone", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz", "Riverside", "Summit",
    "Timber", "Unity", "Vertex", "Willow", "Zenith",
]
COMPANY_KINDS = [
    "Consulting", "Labs", "Logistics", "Dental", "Architects", "Bakery", "Studio", "Legal",
    "Analytics", "Motors", "Health", "Systems", "Foods", "Design", "Partners", "Robotics",
]
SEGMENTS = [("Consumer", 0.58), ("Small Business", 0.32), ("Enterprise", 0.10)]

# order volume by calendar month: a January lull, a summer dip, a strong Q4
MONTH_FACTOR = {1: 0.75, 2: 0.8, 3: 0.95, 4: 1.0, 5: 1.0, 6: 0.9, 7: 0.8, 8: 0.9, 9: 1.05,
                10: 1.1, 11: 1.4, 12: 1.65}


def weighted(rng: random.Random, pairs: list[tuple[object, float]]) -> object:
    items = [item for item, _ in pairs]
    weights = [weight for _, weight in pairs]
    return rng.choices(items, weights=weights)[0]


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(n) for n in range((end - start).days + 1)]


def make_customers(rng: random.Random) -> list[tuple]:
    region_weights = [r[4] for r in REGIONS]
    signup_days = days(dt.date(2021, 6, 1), dt.date(2025, 11, 30))
    customers = []
    used_names: set[str] = set()
    for customer_id in range(1, N_CUSTOMERS + 1):
        region_id = rng.choices(range(1, len(REGIONS) + 1), weights=region_weights)[0]
        segment = weighted(rng, SEGMENTS)
        while True:
            if segment == "Consumer":
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            else:
                name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
                if segment == "Enterprise":
                    name += rng.choice([" Inc.", " Corp.", " Group", " Ltd."])
            if name not in used_names:
                used_names.add(name)
                break
        slug = name.lower().replace(" ", ".").replace(",", "").rstrip(".").replace("..", ".")
        email = None if rng.random() < 0.07 else f"{slug}@example.com"
        _, _, hq, cities, _, _ = REGIONS[region_id - 1]
        city = rng.choice([hq, hq, *cities])
        # more recent signups are more likely: the customer base grows
        signup = rng.choices(signup_days, weights=[1 + i / 400 for i in range(len(signup_days))])[0]
        customers.append((customer_id, name, email, city, region_id, segment, signup.isoformat()))
    return customers


def make_products(rng: random.Random) -> list[tuple]:
    products = []
    product_id = 1
    for category, items in PRODUCTS.items():
        for name, price in items:
            launched = dt.date(2019, 1, 1) + dt.timedelta(rng.randrange(0, 5 * 365))
            products.append((product_id, name, category, price, launched.isoformat()))
            product_id += 1
    return products


def day_weight(day: dt.date, growth: float) -> float:
    weekend = 0.7 if day.weekday() >= 5 else 1.0
    year = growth if day.year == 2025 else 1.0
    return MONTH_FACTOR[day.month] * weekend * year


def order_status(rng: random.Random, order_day: dt.date) -> tuple[str, str | None]:
    """Status and shipped date: recent orders are still open, older ones mostly completed."""
    age = (LAST_DAY - order_day).days
    ship = order_day + dt.timedelta(rng.choice([1, 1, 2, 2, 3, 4, 6]))
    if age < 4:
        status = weighted(rng, [("pending", 0.75), ("shipped", 0.2), ("cancelled", 0.05)])
    elif age < 15:
        status = weighted(rng, [("pending", 0.1), ("shipped", 0.75), ("completed", 0.1),
                                ("cancelled", 0.05)])
    else:
        status = weighted(rng, [("completed", 0.9), ("cancelled", 0.055), ("returned", 0.045)])
    shipped = None if status in ("pending", "cancelled") or ship > LAST_DAY else ship.isoformat()
    return status, shipped


def make_orders(rng: random.Random, customers: list[tuple]) -> list[tuple]:
    # Pick each order's region first (regions grow differently in 2025), then its day,
    # then a customer of that region who had signed up by then.
    all_days = days(FIRST_DAY, LAST_DAY)
    by_region: dict[int, list[tuple]] = defaultdict(list)
    for c in sorted(customers, key=lambda c: c[6]):
        by_region[c[4]].append(c)
    # a few loyal customers order much more often than the rest (Pareto-like)
    loyalty = {c[0]: min(rng.paretovariate(2.2), 12.0) for c in customers}
    region_tables = {}
    for region_id, members in by_region.items():
        growth = REGIONS[region_id - 1][5]
        region_tables[region_id] = (
            [m[6] for m in members],
            members,
            list(accumulate(loyalty[m[0]] for m in members)),
            list(accumulate(day_weight(d, growth) for d in all_days)),
        )
    region_ids = sorted(by_region)
    # P(region, day) ~ share(region) * day_weight(day, growth(region))
    region_weights = [REGIONS[r - 1][4] * region_tables[r][3][-1] for r in region_ids]

    orders = []
    for _ in range(N_ORDERS):
        region_id = rng.choices(region_ids, weights=region_weights)[0]
        signups, members, cum_loyalty, cum_days = region_tables[region_id]
        while True:
            day = rng.choices(all_days, cum_weights=cum_days)[0]
            k = bisect.bisect_right(signups, day.isoformat())
            if k:
                break
        customer = rng.choices(members[:k], cum_weights=cum_loyalty[:k])[0]
        status, shipped = order_status(rng, day)
        segment = customer[5]
        channel = weighted(rng, [("online", 0.62), ("store", 0.3), ("phone", 0.08)]
                           if segment != "Enterprise" else
                           [("online", 0.45), ("store", 0.1), ("phone", 0.45)])
        orders.append([None, customer[0], day.isoformat(), shipped, status, channel, segment])
    orders.sort(key=lambda o: o[2])
    return [(i, *o[1:6]) for i, o in enumerate(orders, start=1)]


def make_order_items(rng: random.Random, orders: list[tuple], customers: list[tuple],
                     products: list[tuple]) -> list[tuple]:
    segment_of = {c[0]: c[5] for c in customers}
    popularity = [rng.lognormvariate(0, 0.8) for _ in products]
    items = []
    item_id = 1
    for order_id, customer_id, order_date, *_ in orders:
        segment = segment_of[customer_id]
        n_lines = rng.choices([1, 2, 3, 4, 5, 6], weights=[28, 27, 20, 12, 8, 5])[0]
        chosen: set[int] = set()
        while len(chosen) < n_lines:
            chosen.add(rng.choices(range(len(products)), weights=popularity)[0])
        for index in sorted(chosen):
            product_id, _, category, price, _ = products[index]
            if order_date >= "2025-01-01":
                price = round(price * PRICE_CHANGE_2025[category], 2)
            if segment == "Enterprise":
                quantity = rng.choice([2, 3, 5, 5, 8, 10, 12, 15, 20, 25])
                if price > 300:  # nobody buys 25 conference tables
                    quantity = min(quantity, rng.choice([1, 2, 3, 4, 6]))
                discount = weighted(rng, [(0.0, 0.2), (0.1, 0.3), (0.15, 0.3), (0.2, 0.2)])
            elif segment == "Small Business":
                quantity = rng.choices([1, 2, 3, 4, 5, 10], weights=[30, 25, 15, 10, 12, 8])[0]
                discount = weighted(rng, [(0.0, 0.55), (0.05, 0.25), (0.1, 0.15), (0.15, 0.05)])
            else:
                quantity = rng.choices([1, 2, 3, 4], weights=[70, 20, 7, 3])[0]
                month = order_date[5:7]
                promo = 0.35 if month in ("11", "12") else 0.12  # holiday promotions
                discount = weighted(rng, [(0.0, 1 - promo), (0.1, promo * 0.6),
                                          (0.2, promo * 0.4)])
            items.append((item_id, order_id, product_id, quantity, price, discount))
            item_id += 1
    return items


def write_db(out: Path, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    customers = make_customers(rng)
    products = make_products(rng)
    orders = make_orders(rng, customers)
    items = make_order_items(rng, orders, customers, products)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO regions VALUES (?, ?, ?, ?)",
                        [(i, r[0], r[1], r[2]) for i, r in enumerate(REGIONS, start=1)])
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", customers)
        con.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", products)
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", orders)
        con.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?)", items)
        con.commit()
        con.execute("PRAGMA foreign_key_check").fetchall()
        con.execute("VACUUM")
    finally:
        con.close()
    tmp.replace(out)
    return {"regions": len(REGIONS), "customers": len(customers), "products": len(products),
            "orders": len(orders), "order_items": len(items)}


def quarterly_actuals_2024(db: Path) -> dict[tuple[str, int], tuple[float, int]]:
    """(region, quarter) -> (revenue, orders) of completed and shipped orders in 2024."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT region, (CAST(substr(order_date, 6, 2) AS INTEGER) + 2) / 3 AS quarter,"
            " SUM(amount), COUNT(DISTINCT order_id) FROM sales WHERE order_date < '2025-01-01'"
            " AND status IN ('completed', 'shipped') GROUP BY region, quarter"
        ).fetchall()
    finally:
        con.close()
    return {(region, quarter): (total, n) for region, quarter, total, n in rows}


def write_files(files_dir: Path, db: Path) -> None:
    """Small demo files for list_files/read_csv; targets are derived from the 2024 data."""
    files_dir.mkdir(parents=True, exist_ok=True)
    (files_dir / "reports").mkdir(exist_ok=True)

    with open(files_dir / "regions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["region_id", "name", "manager", "hq_city"])
        for i, (name, manager, hq, *_rest) in enumerate(REGIONS, start=1):
            writer.writerow([i, name, manager, hq])

    actuals = quarterly_actuals_2024(db)
    with open(files_dir / "targets_2025.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["region", "quarter", "target_revenue", "target_orders"])
        for name, *_rest in REGIONS:
            for quarter in range(1, 5):
                # management asked every region for +12 % revenue and +8 % orders over 2024
                revenue, orders = actuals.get((name, quarter), (0.0, 0))
                target = int(round(revenue * 1.12, -3))
                writer.writerow([name, f"2025-Q{quarter}", target, round(orders * 1.08)])

    (files_dir / "README.md").write_text(README, encoding="utf-8")
    (files_dir / "reports" / "q3_2025_summary.md").write_text(Q3_REPORT, encoding="utf-8")


README = """\
# Sample data for mcp_magic

These files sit next to `sample.db`, the SQLite database the built-in MCP
server (`python -m mcp_magic.server`) queries by default. Everything here is
synthetic and generated by `scripts/make_sample_db.py` (seeded, reproducible).

## The database (`sample.db`)

A small retailer selling electronics, accessories, office supplies, furniture
and software to consumers, small businesses and enterprises in five regions,
2024-01-01 to 2025-12-31.

| table         | rows   | what                                                        |
|---------------|--------|-------------------------------------------------------------|
| `regions`     | 5      | sales regions with their manager                            |
| `customers`   | ~500   | `region_id`, `segment`, `signup_date`, `email` (some null)  |
| `products`    | ~60    | `category`, list `unit_price`                               |
| `orders`      | ~3,000 | `customer_id`, `order_date`, `shipped_date`, `status`, `channel` |
| `order_items` | ~8,000 | `order_id`, `product_id`, `quantity`, `unit_price`, `discount` |

Views:

- `sales`: one row per order item with `region`, `customer`, `segment`,
  `product`, `category`, `order_date`, `status` and
  `amount = quantity * unit_price * (1 - discount)`.
  Revenue usually means `status IN ('completed', 'shipped')`.
- `monthly_revenue`: `month`, `region`, `orders`, `revenue` for completed and
  shipped orders.

Try: `select region, sum(amount) as total from sales group by region`.

## The files

- `regions.csv`: the regions table as CSV.
- `targets_2025.csv`: quarterly revenue and order targets per region for 2025
  (2024 actuals + 12 % revenue, + 8 % orders), to compare with the actuals in the database.
- `reports/q3_2025_summary.md`: a short (made-up) management note.
"""

Q3_REPORT = """\
# Q3 2025 sales summary (draft)

- West keeps growing fastest after the new Seattle team started in January.
- South is behind plan; the regional manager blames the summer dip and
  asked for a promotion budget in Q4.
- Software subscriptions went up 8 % in price on 2025-01-01; watch churn.
- Open question for the analytics team: did the Q4 2024 holiday discounts
  pay off, or did they only pull revenue forward?
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="database to write")
    parser.add_argument("--files-dir", type=Path, default=DEFAULT_FILES,
                        help="where to write the demo files (default: next to the packaged db)")
    parser.add_argument("--no-files", action="store_true", help="write only the database")
    parser.add_argument("--seed", type=int, default=20240101)
    args = parser.parse_args(argv)

    counts = write_db(args.out, args.seed)
    if not args.no_files:
        write_files(args.files_dir, args.out)
    size_kb = args.out.stat().st_size / 1024
    summary = ", ".join(f"{table} {n}" for table, n in counts.items())
    print(f"wrote {args.out} ({size_kb:.0f} KiB): {summary}")


if __name__ == "__main__":
    main()
