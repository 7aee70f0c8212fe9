from chalice import Chalice
from chalicelib import processor, status_api
app = Chalice(app_name="storefirst")
app.register_blueprint(status_api.bp)
app.register_blueprint(processor.bp)
