"""Demo data: two tenants (acme, globex), a fixed cast of users, and work of all five kinds that
fails in varied, realistic ways (several error types, real stacks and logs). Not part of the
product: only `manage.py seed_demo`, `manage.py up` and the tests import it.

Every row is what the engine really records. Each scenario (a function, rule, job, workflow or run
that fails in its own way, or succeeds; specs.py) runs once per process through the engine - right
here, never through the queue (items.py) - in a savepoint that is rolled back; what it recorded is
kept as an exemplar (exemplars.py), and copies of exemplars get new ids and their own times
(copies.py).

seed()    Tenants, users, definitions and a week of history (copies of every scenario at random
          times) are created once. Every call issues fresh API keys and JWTs and runs a fresh set of
          the manifest's items through the engine just now, so every id in the manifest it returns
          is in its stated state even when earlier ones were retried meanwhile. Only the first call
          in a process runs the exemplars, so tests can seed per test.
scale(n)  n failed items of each kind, half per tenant, set-based: copies of the failing exemplars
          made by the database (INSERT ... SELECT FROM generate_series, one statement per kind and
          tenant; bulk_create batches on SQLite), timestamps spread over the last 7 days. A good
          share use the `flaky` handler, so retrying them succeeds.
"""

from . import handlers  # noqa: F401 - registers the demo's handlers wherever the demo runs
from .cast import ORGS, USERS, demo_password
from .seeding import demo_tenants_exist, scale, seed

__all__ = ["ORGS", "USERS", "demo_password", "demo_tenants_exist", "scale", "seed"]
