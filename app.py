"""storefirst: requests stored first by API Gateway, processed from the table's stream."""
from chalice import Chalice

from chalicelib import orders, processor, status_api

app = Chalice(app_name="storefirst")
app.register_blueprint(status_api.bp)
app.register_blueprint(processor.bp)

# The business logic: replace orders.take_order with your own function.
processor.configure(orders.take_order)
