"""storefirst: requests stored first by API Gateway, processed from the table's stream."""
import os

from chalice import Chalice

from chalicelib import failures, orders, processor, reconciler, requests_api

app = Chalice(app_name="storefirst")
app.register_blueprint(requests_api.bp)
app.register_blueprint(processor.bp)
app.register_blueprint(failures.bp)
app.register_blueprint(reconciler.bp)

# The business logic: replace orders.take_order with your own function.
processor.configure(orders.take_order)

# Under a chalice command (never in Lambda): `chalice local` runs the whole pipeline and `chalice
# deploy` the whole system. infra/chalice_cli.py; neither it nor what it loads ships in the zip.
if os.environ.get("AWS_CHALICE_CLI_MODE"):
    from infra.chalice_cli import extend

    extend(app)
